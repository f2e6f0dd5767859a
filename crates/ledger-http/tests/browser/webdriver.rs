//! A small WebDriver client over plain HTTP JSON: the system's chromedriver driving the
//! system's headless Chromium. Every call and every wait is bounded.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

pub const CHROMIUM: &str = "/usr/bin/chromium";
pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
/// One WebDriver call; page loads included.
const CALL_TIMEOUT: Duration = Duration::from_secs(60);
/// How long chromedriver may take to listen.
const DRIVER_START_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a wait for something on the page lasts, and its polling pace.
pub const WAIT_TIMEOUT: Duration = Duration::from_secs(30);
const POLL: Duration = Duration::from_millis(100);
/// WebDriver's codes of the Tab and Enter keys.
pub const TAB: &str = "\u{E004}";
pub const ENTER: &str = "\u{E007}";
/// The W3C key naming an element in WebDriver replies.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// A running chromedriver (killed when dropped) with one browser session.
pub struct Browser {
    driver: Child,
    http: reqwest::Client,
    session: String,
    profile: PathBuf,
}

#[derive(Debug, Clone)]
pub struct Element(String);

/// Fails (does not skip) when the browser is missing: `scripts/test` installs it.
pub fn require_chromium() {
    for path in [CHROMIUM, CHROMEDRIVER] {
        assert!(
            Path::new(path).exists(),
            "{path} is missing: install Debian's chromium and chromium-driver (scripts/test does so with apt-get)"
        );
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

impl Browser {
    /// Starts chromedriver on a free port and opens a headless Chromium at `width`×`height`.
    pub async fn start(width: u32, height: u32) -> Browser {
        require_chromium();
        let port = free_port();
        let driver = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        let http = reqwest::Client::builder().timeout(CALL_TIMEOUT).build().unwrap();
        let base = format!("http://127.0.0.1:{port}");
        let started = Instant::now();
        while http.get(format!("{base}/status")).send().await.is_err() {
            assert!(
                started.elapsed() < DRIVER_START_TIMEOUT,
                "chromedriver did not listen within {DRIVER_START_TIMEOUT:?}"
            );
            tokio::time::sleep(POLL).await;
        }
        let profile = std::env::temp_dir().join(format!("ledger-chromium-{}", uuid::Uuid::new_v4()));
        let capabilities = json!({ "capabilities": { "alwaysMatch": {
            "browserName": "chrome",
            "goog:loggingPrefs": { "browser": "ALL" },
            "goog:chromeOptions": {
                "binary": CHROMIUM,
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                         "--no-first-run", "--disable-extensions", "--disable-background-networking",
                         format!("--window-size={width},{height}"),
                         format!("--user-data-dir={}", profile.display())]
            }
        }}});
        let reply: Value =
            http.post(format!("{base}/session")).json(&capabilities).send().await.unwrap().json().await.unwrap();
        let session = reply["value"]["sessionId"].as_str().unwrap_or_else(|| panic!("no session: {reply}")).to_string();
        let mut browser = Browser { driver, http, session: format!("{base}/session/{session}"), profile };
        browser.set_window(width, height).await;
        browser
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut request = self.http.request(method.clone(), format!("{}{path}", self.session));
        if let Some(body) = body {
            request = request.json(&body);
        }
        let reply: Value = request.send().await.unwrap().json().await.unwrap();
        if let Some(error) = reply["value"]["error"].as_str() {
            panic!("WebDriver {method} {path}: {error}: {}", reply["value"]["message"]);
        }
        reply["value"].clone()
    }

    async fn try_call(&self, path: &str, body: Value) -> Option<Value> {
        let reply: Value =
            self.http.post(format!("{}{path}", self.session)).json(&body).send().await.ok()?.json().await.ok()?;
        reply["value"]["error"].is_null().then(|| reply["value"].clone())
    }

    pub async fn set_window(&mut self, width: u32, height: u32) {
        self.call(reqwest::Method::POST, "/window/rect", Some(json!({ "width": width, "height": height }))).await;
    }

    pub async fn goto(&self, url: &str) {
        self.call(reqwest::Method::POST, "/url", Some(json!({ "url": url }))).await;
    }

    /// Runs a script in the page and returns its value.
    pub async fn script(&self, script: &str, args: Vec<Value>) -> Value {
        self.call(reqwest::Method::POST, "/execute/sync", Some(json!({ "script": script, "args": args }))).await
    }

    /// The elements matching a CSS selector now.
    pub async fn all(&self, css: &str) -> Vec<Element> {
        let found =
            self.call(reqwest::Method::POST, "/elements", Some(json!({ "using": "css selector", "value": css })));
        found.await.as_array().unwrap().iter().map(|e| Element(e[ELEMENT].as_str().unwrap().to_string())).collect()
    }

    /// Waits for an element matching a CSS selector.
    pub async fn find(&self, css: &str) -> Element {
        let started = Instant::now();
        loop {
            let body = json!({ "using": "css selector", "value": css });
            if let Some(found) = self.try_call("/element", body).await {
                return Element(found[ELEMENT].as_str().unwrap_or_else(|| panic!("{css}: {found}")).to_string());
            }
            assert!(started.elapsed() < WAIT_TIMEOUT, "no element {css} within {WAIT_TIMEOUT:?}");
            tokio::time::sleep(POLL).await;
        }
    }

    /// Waits until `check` of the text of the element matching `css` holds; returns that text.
    pub async fn wait_text(&self, css: &str, what: &str, check: impl Fn(&str) -> bool) -> String {
        let started = Instant::now();
        loop {
            // Read in one script call: the page may re-render the element between two calls.
            let script = "const e = document.querySelector(arguments[0]); return e ? e.innerText : '';";
            let text = self.script(script, vec![json!(css)]).await.as_str().unwrap_or("").trim().to_string();
            if check(&text) {
                return text;
            }
            assert!(started.elapsed() < WAIT_TIMEOUT, "{css} never showed {what}; it shows {text:?}");
            tokio::time::sleep(POLL).await;
        }
    }

    /// Waits until the number of elements matching `css` is `n`.
    pub async fn wait_count(&self, css: &str, n: usize) -> Vec<Element> {
        let started = Instant::now();
        loop {
            let found = self.all(css).await;
            if found.len() == n {
                return found;
            }
            assert!(started.elapsed() < WAIT_TIMEOUT, "{css}: {} elements, never {n}", found.len());
            tokio::time::sleep(POLL).await;
        }
    }

    pub async fn click(&self, e: &Element) {
        self.call(reqwest::Method::POST, &format!("/element/{}/click", e.0), Some(json!({}))).await;
    }

    pub async fn type_into(&self, e: &Element, text: &str) {
        self.call(reqwest::Method::POST, &format!("/element/{}/clear", e.0), Some(json!({}))).await;
        self.call(reqwest::Method::POST, &format!("/element/{}/value", e.0), Some(json!({ "text": text }))).await;
    }

    /// Sends keys to an element without clearing it (WebDriver key codes: [`TAB`], [`ENTER`]).
    pub async fn keys(&self, e: &Element, keys: &str) {
        self.call(reqwest::Method::POST, &format!("/element/{}/value", e.0), Some(json!({ "text": keys }))).await;
    }

    /// The element that has the keyboard focus.
    pub async fn active(&self) -> Element {
        let found = self.call(reqwest::Method::GET, "/element/active", None).await;
        Element(found[ELEMENT].as_str().unwrap_or_else(|| panic!("no active element: {found}")).to_string())
    }

    /// The controls (input, select, textarea, button) of the page that have no label
    /// (a `<label for>`, an aria-label, or a button's own text), by id or tag.
    pub async fn unlabelled_controls(&self) -> Vec<String> {
        let script = "return [...document.querySelectorAll('input, select, textarea, button')]
            .filter(e => !(e.labels && e.labels.length) && !e.getAttribute('aria-label') && !(e.tagName === 'BUTTON' && e.innerText.trim()))
            .map(e => e.id || e.outerHTML.slice(0, 80));";
        let found = self.script(script, vec![]).await;
        found.as_array().unwrap().iter().map(|v| v.as_str().unwrap_or("").to_string()).collect()
    }

    pub async fn text(&self, e: &Element) -> String {
        self.call(reqwest::Method::GET, &format!("/element/{}/text", e.0), None)
            .await
            .as_str()
            .unwrap_or("")
            .to_string()
    }

    pub async fn attribute(&self, e: &Element, name: &str) -> String {
        let value = self.call(reqwest::Method::GET, &format!("/element/{}/attribute/{name}", e.0), None).await;
        value.as_str().unwrap_or("").to_string()
    }

    /// A DOM property of an element (`value` of a select or an input).
    pub async fn property(&self, e: &Element, name: &str) -> String {
        let value = self.call(reqwest::Method::GET, &format!("/element/{}/property/{name}", e.0), None).await;
        value.as_str().unwrap_or("").to_string()
    }

    /// The elements matching `css` inside `e`.
    pub async fn within(&self, e: &Element, css: &str) -> Vec<Element> {
        let body = json!({ "using": "css selector", "value": css });
        let found = self.call(reqwest::Method::POST, &format!("/element/{}/elements", e.0), Some(body)).await;
        found.as_array().unwrap().iter().map(|e| Element(e[ELEMENT].as_str().unwrap().to_string())).collect()
    }

    /// Saves a PNG of the window under `target/screenshots/` and returns its path.
    pub async fn screenshot(&self, name: &str) -> PathBuf {
        let encoded = self.call(reqwest::Method::GET, "/screenshot", None).await;
        self.save_png(name, encoded.as_str().unwrap())
    }

    /// Saves a PNG of the whole page, beyond the window (Chromium's DevTools command
    /// through chromedriver), under `target/screenshots/`.
    pub async fn full_page_screenshot(&self, name: &str) -> PathBuf {
        let size =
            self.script("const d = document.documentElement; return [d.scrollWidth, d.scrollHeight];", vec![]).await;
        let clip = json!({ "x": 0, "y": 0, "width": size[0], "height": size[1], "scale": 1 });
        let params = json!({ "format": "png", "captureBeyondViewport": true, "clip": clip });
        let shot = self.call(
            reqwest::Method::POST,
            "/goog/cdp/execute",
            Some(json!({ "cmd": "Page.captureScreenshot", "params": params })),
        );
        self.save_png(name, shot.await["data"].as_str().unwrap())
    }

    fn save_png(&self, name: &str, encoded: &str) -> PathBuf {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/screenshots");
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(format!("{name}.png"));
        std::fs::write(&path, base64_decode(encoded)).unwrap();
        path
    }

    /// The browser's console messages of level SEVERE since the last call (CSP
    /// violations, failed loads, uncaught errors).
    pub async fn severe_console_messages(&self) -> Vec<String> {
        let log = self.call(reqwest::Method::POST, "/se/log", Some(json!({ "type": "browser" }))).await;
        let entries = log.as_array().cloned().unwrap_or_default();
        entries
            .iter()
            .filter(|e| e["level"] == "SEVERE")
            .map(|e| e["message"].as_str().unwrap_or("").to_string())
            .collect()
    }

    /// Every URL the page loaded (resource timing), to prove none left this origin.
    pub async fn loaded_urls(&self) -> Vec<String> {
        let urls = self
            .script("return [location.href, ...performance.getEntriesByType('resource').map(e => e.name)];", vec![])
            .await;
        urls.as_array().unwrap().iter().map(|u| u.as_str().unwrap().to_string()).collect()
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // Closing the session ends Chromium; then the driver, which this test started.
        // A client of its own: the test's runtime may be shutting down.
        let session = self.session.clone();
        let closing = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            let http = reqwest::Client::new();
            rt.block_on(async { http.delete(session).timeout(Duration::from_secs(10)).send().await.ok() });
        });
        let _ = closing.join();
        let _ = self.driver.kill();
        let _ = self.driver.wait();
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

/// Standard base64 (the screenshot's encoding), padding allowed.
fn base64_decode(text: &str) -> Vec<u8> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let (mut buffer, mut bits) = (0u32, 0u32);
    for byte in text.bytes().filter(|b| *b != b'=' && !b.is_ascii_whitespace()) {
        let value = ALPHABET.iter().position(|a| *a == byte).expect("base64") as u32;
        buffer = (buffer << 6) | value;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((buffer >> bits) as u8);
            buffer &= (1 << bits) - 1;
        }
    }
    out
}
