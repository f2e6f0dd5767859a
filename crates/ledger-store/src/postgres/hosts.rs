//! libpq's multi-host URL, which sqlx cannot read:
//! `postgres://user:pass@host1:5432,[::1]:5433/db?target_session_attrs=read-write`.
//!
//! It is split into one single-host URL per host (the same user, database and
//! parameters), each read by sqlx, so TLS and every other parameter mean exactly what
//! they mean for a single host (`verify-full` checks each host's own name).

use std::str::FromStr;

use sqlx::postgres::PgConnectOptions;

use crate::error::StoreError;

/// libpq's port when a host names none.
pub(crate) const DEFAULT_PORT: u16 = 5432;

/// One host of the list, in the order given.
#[derive(Debug, Clone)]
pub(crate) struct Host {
    /// `host:port` (`[addr]:port` for IPv6), for logs and errors: never the password.
    pub label: String,
    pub options: PgConnectOptions,
}

/// What a URL asks for.
#[derive(Debug)]
pub(crate) enum Target {
    /// One host and no `target_session_attrs`: the URL as given (sqlx reads it).
    Single(String),
    /// Hosts to try in order, taking the first that is not in recovery.
    Primary(Vec<Host>),
}

/// Reads `url` (already without `connect_timeout`). A URL naming several hosts, or
/// `target_session_attrs`, asks for the primary among its hosts.
pub(crate) fn parse(url: &str) -> Result<Target, StoreError> {
    let (scheme, rest) = url.split_once("://").ok_or_else(|| bad("it has no scheme"))?;
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let (userinfo, host_list) = match authority.rfind('@') {
        Some(at) => (Some(&authority[..at]), &authority[at + 1..]),
        None => (None, authority),
    };
    let (path, query) = match tail.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (tail, None),
    };
    let (target_attrs, params) = split_query(query)?;
    let hosts: Vec<&str> = host_list.split(',').collect();
    if hosts.len() == 1 && target_attrs.is_none() {
        return Ok(Target::Single(url.to_string()));
    }
    if params.iter().any(|p| p.starts_with("host=") || p.starts_with("port=")) {
        return Err(bad("with several hosts or target_session_attrs, name the hosts before the path, not as host= or port= parameters"));
    }
    let user = userinfo.map(|u| format!("{u}@")).unwrap_or_default();
    let query = match params.is_empty() {
        true => String::new(),
        false => format!("?{}", params.join("&")),
    };
    let mut parsed = Vec::with_capacity(hosts.len());
    for host in hosts {
        let (name, port) = host_and_port(host)?;
        let label = format!("{name}:{port}");
        let single = format!("{scheme}://{user}{label}{path}{query}");
        let options = PgConnectOptions::from_str(&single)
            .map_err(|e| StoreError::Config(format!("the PostgreSQL URL cannot be read for host {label}: {e}")))?;
        parsed.push(Host { label, options });
    }
    Ok(Target::Primary(parsed))
}

/// The query without `target_session_attrs`, and that parameter's value once checked.
fn split_query(query: Option<&str>) -> Result<(Option<String>, Vec<&str>), StoreError> {
    let mut target = None;
    let mut kept = vec![];
    for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        match pair.strip_prefix("target_session_attrs=") {
            // The ledger writes: only a host that takes writes will do.
            Some(value @ ("read-write" | "primary")) => target = Some(value.to_string()),
            Some(other) => {
                return Err(bad(&format!(
                    "target_session_attrs={other:?} is not supported: the ledger writes, so it takes \
                     read-write or primary (the default with several hosts)"
                )))
            }
            None => kept.push(pair),
        }
    }
    Ok((target, kept))
}

/// `host`, `host:port`, `[v6]` or `[v6]:port`; the port defaults to 5432.
fn host_and_port(text: &str) -> Result<(String, u16), StoreError> {
    let (name, port) = if let Some(bracketed) = text.strip_prefix('[') {
        let (addr, after) = bracketed
            .split_once(']')
            .ok_or_else(|| bad(&format!("the IPv6 address in {text:?} has no closing ']'")))?;
        if addr.parse::<std::net::Ipv6Addr>().is_err() {
            return Err(bad(&format!("{addr:?} (in brackets) is not an IPv6 address")));
        }
        match after {
            "" => (format!("[{addr}]"), None),
            _ => match after.strip_prefix(':') {
                Some(port) => (format!("[{addr}]"), Some(port)),
                None => return Err(bad(&format!("{text:?}: only ':port' may follow an IPv6 address in brackets"))),
            },
        }
    } else {
        match text.split_once(':') {
            Some((_, port)) if port.contains(':') => {
                return Err(bad(&format!("{text:?}: an IPv6 address must be written in brackets, [addr]:port")))
            }
            Some((name, port)) => (name.to_string(), Some(port)),
            None => (text.to_string(), None),
        }
    };
    if name.is_empty() {
        return Err(bad("an empty host in the host list (hosts are separated by single commas)"));
    }
    let port = match port {
        None => DEFAULT_PORT,
        Some(port) => match port.parse::<u16>() {
            Ok(port) if port > 0 => port,
            _ => return Err(bad(&format!("{port:?} (host {name}) is not a port: a number from 1 to 65535"))),
        },
    };
    Ok((name, port))
}

fn bad(rule: &str) -> StoreError {
    StoreError::Config(format!("the PostgreSQL URL cannot be read: {rule}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hosts(url: &str) -> Vec<Host> {
        match parse(url).unwrap() {
            Target::Primary(hosts) => hosts,
            Target::Single(_) => panic!("{url} read as a single host"),
        }
    }

    fn error(url: &str) -> String {
        match parse(url) {
            Err(StoreError::Config(message)) => message,
            other => panic!("{url}: expected a configuration error, got {other:?}"),
        }
    }

    #[test]
    fn a_single_host_is_passed_on_unchanged() {
        let url = "postgres://u:p@db:5433/ledger?sslmode=require";
        assert!(matches!(parse(url).unwrap(), Target::Single(u) if u == url));
    }

    #[test]
    fn hosts_keep_their_order_ports_user_database_and_parameters() {
        let hosts = hosts(
            "postgresql://ledger:s%40cret@db1,db2:5433,[::1]:6543,[fe80::1]/ledger?sslmode=disable&target_session_attrs=read-write",
        );
        let labels: Vec<&str> = hosts.iter().map(|h| h.label.as_str()).collect();
        assert_eq!(labels, ["db1:5432", "db2:5433", "[::1]:6543", "[fe80::1]:5432"]);
        for host in &hosts {
            assert_eq!(host.options.get_username(), "ledger");
            assert_eq!(host.options.get_database(), Some("ledger"));
            assert!(matches!(host.options.get_ssl_mode(), sqlx::postgres::PgSslMode::Disable));
        }
        assert_eq!(hosts[1].options.get_host(), "db2");
        assert_eq!(hosts[1].options.get_port(), 5433);
        assert_eq!(hosts[2].options.get_port(), 6543);
    }

    #[test]
    fn target_session_attrs_alone_asks_for_the_primary() {
        let hosts = hosts("postgres://u@db/x?target_session_attrs=primary");
        assert_eq!(hosts.len(), 1);
        assert_eq!(hosts[0].label, "db:5432");
    }

    #[test]
    fn bad_urls_name_the_rule() {
        assert!(error("postgres://u@db1,,db2/x").contains("empty host"));
        assert!(error("postgres://u@db1,db2:99999/x").contains("not a port"));
        assert!(error("postgres://u@db1,db2:0/x").contains("not a port"));
        assert!(error("postgres://u@db1,db2:x/x").contains("not a port"));
        assert!(error("postgres://u@db1,::1:5432/x").contains("brackets"));
        assert!(error("postgres://u@db1,[::1/x").contains("closing ']'"));
        assert!(error("postgres://u@db1,[db2]/x").contains("not an IPv6 address"));
        assert!(error("postgres://u@db1,[::1]5432/x").contains("only ':port'"));
        assert!(error("postgres://u@db1,db2/x?target_session_attrs=any").contains("read-write or primary"));
        assert!(error("postgres://u@db1,db2/x?host=db3").contains("not as host="));
    }

    #[test]
    fn errors_never_show_the_password() {
        let message = error("postgres://u:hunter2@db1,db2:nope/x");
        assert!(!message.contains("hunter2"), "{message}");
    }
}
