//! Lists every migration file of `migrations/postgres` and `migrations/sqlite` for
//! `src/migrate.rs`, so a new file is embedded without being named anywhere. A file in
//! those folders that is not a migration (`<version>_<name>.sql`) fails the build instead
//! of being skipped.

use std::{collections::BTreeMap, env, fmt::Write, fs, path::Path};

fn main() {
    let root = Path::new(&env::var("CARGO_MANIFEST_DIR").unwrap()).join("../../migrations");
    let mut out = String::new();
    for (constant, dir) in [("POSTGRES", "postgres"), ("SQLITE", "sqlite")] {
        let dir = root.join(dir);
        // A directory: Cargo re-runs this script when any file in it is added, removed or changed.
        println!("cargo:rerun-if-changed={}", dir.display());
        let mut migrations = BTreeMap::new();
        for entry in fs::read_dir(&dir).unwrap_or_else(|e| panic!("reading {}: {e}", dir.display())) {
            let path = entry.unwrap().path();
            let file = path.file_name().unwrap().to_string_lossy().into_owned();
            if file.starts_with('.') {
                continue; // editor and VCS files (.gitkeep, .foo.sql.swp)
            }
            let (version, name) = parse(&file).unwrap_or_else(|| {
                panic!(
                    "{}: not a migration; files there must be named <version>_<name>.sql \
                     (digits, then letters, digits and underscores)",
                    path.display()
                )
            });
            assert!(path.is_file(), "{} is not a file", path.display());
            if let Some(other) = migrations.insert(version, (name, path.canonicalize().unwrap())) {
                panic!("{}: version {version} also used by {}", path.display(), other.1.display());
            }
        }
        writeln!(out, "pub(crate) const {constant}: &[(i64, &str, &str)] = &[").unwrap();
        for (version, (name, path)) in &migrations {
            writeln!(out, "    ({version}, {name:?}, include_str!({:?})),", path.to_str().unwrap()).unwrap();
        }
        writeln!(out, "];").unwrap();
    }
    fs::write(Path::new(&env::var("OUT_DIR").unwrap()).join("migrations.rs"), out).unwrap();
}

/// `0003_credit_counts.sql` -> (3, "0003_credit_counts"): the version, and the file stem
/// recorded as the description (as the hand-written list did before).
fn parse(file: &str) -> Option<(i64, String)> {
    let stem = file.strip_suffix(".sql")?;
    let (digits, name) = stem.split_once('_')?;
    let valid_name = !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if digits.is_empty() || !digits.chars().all(|c| c.is_ascii_digit()) || !valid_name {
        return None;
    }
    let version: i64 = digits.parse().ok()?;
    (version > 0).then(|| (version, stem.to_owned()))
}
