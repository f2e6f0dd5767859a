//! Migrations embedded in the binary, so a deployed service needs no files beside it.
//!
//! `build.rs` lists every file of `migrations/postgres` and `migrations/sqlite` (and fails
//! the build on a file there that is not `<version>_<name>.sql`), so a new migration cannot
//! be left out by forgetting to name it here. Each is recorded as the hand-written list did
//! before: version from the prefix, the file stem as description, the SHA-384 of the SQL
//! as checksum, so databases migrated by earlier builds validate unchanged.

use std::borrow::Cow;

use sqlx::migrate::{Migration, MigrationType, Migrator};

mod files {
    include!(concat!(env!("OUT_DIR"), "/migrations.rs"));
}

fn migrator(files: &'static [(i64, &'static str, &'static str)]) -> Migrator {
    let migrations = files
        .iter()
        .map(|&(version, name, sql)| {
            let no_tx = sql.starts_with("-- no-transaction"); // sqlx's own convention
            Migration::new(version, Cow::Borrowed(name), MigrationType::Simple, Cow::Borrowed(sql), no_tx)
        })
        .collect::<Vec<_>>();
    Migrator { migrations: Cow::Owned(migrations), ..Migrator::DEFAULT }
}

pub(crate) fn postgres() -> Migrator {
    migrator(files::POSTGRES)
}

pub(crate) fn sqlite() -> Migrator {
    migrator(files::SQLITE)
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use sha2::{Digest, Sha384};

    use super::*;

    fn folder(dir: &str) -> Vec<(String, Vec<u8>)> {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../migrations").join(dir);
        let mut files: Vec<_> = std::fs::read_dir(&path)
            .unwrap()
            .map(|entry| entry.unwrap().path())
            .filter(|p| !p.file_name().unwrap().to_string_lossy().starts_with('.'))
            .map(|p| (p.file_name().unwrap().to_string_lossy().into_owned(), std::fs::read(&p).unwrap()))
            .collect();
        files.sort();
        files
    }

    /// Read at run time, the folder must match what was embedded at build time: every file
    /// is a migration, none is missing, none is stale.
    #[test]
    fn every_file_of_the_folders_is_a_migration() {
        for (dir, migrator) in [("postgres", postgres()), ("sqlite", sqlite())] {
            let files = folder(dir);
            assert!(!files.is_empty(), "no migrations in migrations/{dir}");
            let embedded: Vec<_> = migrator.iter().map(|m| format!("{}.sql", m.description)).collect();
            let on_disk: Vec<_> = files.iter().map(|(name, _)| name.clone()).collect();
            assert_eq!(embedded, on_disk, "migrations/{dir}: files skipped or stale build");
            for ((name, sql), migration) in files.iter().zip(migrator.iter()) {
                let version: i64 = name.split_once('_').unwrap().0.parse().unwrap();
                assert_eq!(migration.version, version, "{dir}/{name}");
                assert_eq!(migration.migration_type, MigrationType::Simple, "{dir}/{name}");
                assert_eq!(&*migration.checksum, Sha384::digest(sql).as_slice(), "{dir}/{name}: stale build");
            }
        }
    }

    macro_rules! before {
        ($dir:literal: $($version:literal => $name:literal),*) => {
            vec![$(Migration::new(
                $version,
                Cow::Borrowed($name),
                MigrationType::Simple,
                Cow::Borrowed(include_str!(concat!("../../../migrations/", $dir, "/", $name, ".sql"))),
                false,
            )),*]
        };
    }

    /// The hand-written lists that earlier builds recorded in `_sqlx_migrations`.
    fn postgres_before() -> Vec<Migration> {
        before!("postgres": 1 => "0001_events_and_credits", 2 => "0002_expiry_and_idempotency",
            3 => "0003_credit_counts", 4 => "0004_plan_by_end_date")
    }

    fn sqlite_before() -> Vec<Migration> {
        before!("sqlite": 1 => "0001_events_and_credits", 2 => "0002_expiry_and_idempotency",
            3 => "0003_plan_by_end_date")
    }

    /// The migrations earlier builds applied come out unchanged, or databases they migrated
    /// would fail validation (sqlx compares each applied version's checksum).
    #[test]
    fn earlier_builds_recorded_the_same_migrations() {
        for (before, now) in [(postgres_before(), postgres()), (sqlite_before(), sqlite())] {
            assert!(now.iter().count() >= before.len());
            for (old, new) in before.iter().zip(now.iter()) {
                assert_eq!(
                    (old.version, &old.description, &old.checksum, old.no_tx, old.migration_type),
                    (new.version, &new.description, &new.checksum, new.no_tx, new.migration_type)
                );
            }
        }
    }

    /// A SQLite database migrated by an earlier build migrates again without error.
    #[tokio::test]
    async fn a_database_migrated_by_an_earlier_build_still_migrates() {
        let pool = sqlx::sqlite::SqlitePoolOptions::new().max_connections(1).connect("sqlite::memory:").await.unwrap();
        let earlier = Migrator { migrations: Cow::Owned(sqlite_before()), ..Migrator::DEFAULT };
        earlier.run(&pool).await.unwrap();
        sqlite().run(&pool).await.unwrap();
    }
}
