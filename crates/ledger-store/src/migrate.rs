//! Migrations embedded in the binary, so a deployed service needs no files beside it.

use std::borrow::Cow;

use sqlx::migrate::{Migration, MigrationType, Migrator};

macro_rules! migrations {
    ($dir:literal: $($version:literal => $name:literal),* $(,)?) => {
        vec![$(Migration::new(
            $version,
            Cow::Borrowed($name),
            MigrationType::Simple,
            Cow::Borrowed(include_str!(concat!("../../../migrations/", $dir, "/", $name, ".sql"))),
            false,
        )),*]
    };
}

fn migrator(migrations: Vec<Migration>) -> Migrator {
    Migrator { migrations: Cow::Owned(migrations), ..Migrator::DEFAULT }
}

pub(crate) fn postgres() -> Migrator {
    migrator(
        migrations!("postgres": 1 => "0001_events_and_credits", 2 => "0002_expiry_and_idempotency", 3 => "0003_credit_counts", 4 => "0004_plan_by_end_date", 5 => "0005_idempotency_outcomes"),
    )
}

pub(crate) fn sqlite() -> Migrator {
    migrator(
        migrations!("sqlite": 1 => "0001_events_and_credits", 2 => "0002_expiry_and_idempotency", 3 => "0003_plan_by_end_date", 4 => "0004_idempotency_outcomes"),
    )
}
