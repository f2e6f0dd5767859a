//! The audit console and the API explorer in a real browser: the system's headless
//! Chromium driven over WebDriver by its chromedriver, against the real app on SQLite.
//! Screenshots go to `target/screenshots/` (ignored by git).

mod console;
mod docs;
#[path = "../api/helpers.rs"]
#[allow(dead_code)]
mod helpers;
mod webdriver;
