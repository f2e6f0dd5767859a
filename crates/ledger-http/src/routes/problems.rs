//! `/problems` and `/problems/{name}`: the page every problem's `type` resolves to. It
//! explains the named type and lists every rule the API can return (`crate::rules`).

use actix_web::{web, HttpRequest, HttpResponse};

use super::pages::{respond, CONTENT_SECURITY_POLICY, HTML, REVALIDATE};
use crate::problem::ApiError;
use crate::rules::{self, Channel, Rule, PROBLEMS_PATH, RULES, STATUS_TYPES};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route(PROBLEMS_PATH, web::get().to(catalogue)).route(&format!("{PROBLEMS_PATH}/{{name}}"), web::get().to(one));
}

async fn catalogue() -> HttpResponse {
    html(page(None))
}

async fn one(req: HttpRequest) -> Result<HttpResponse, ApiError> {
    let name = req.match_info().get("name").unwrap_or_default();
    let rule = rules::find(name).ok_or(ApiError::NotFound)?;
    Ok(html(page(Some(rule))))
}

fn html(body: String) -> HttpResponse {
    respond(HTML, REVALIDATE, CONTENT_SECURITY_POLICY, body)
}

/// Escapes text for HTML.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// Escapes a meaning and sets its `backticked` words as code.
fn prose(text: &str) -> String {
    escape(text)
        .split('`')
        .enumerate()
        .map(|(i, part)| if i % 2 == 1 { format!("<code>{part}</code>") } else { part.to_string() })
        .collect()
}

fn channel(c: Channel) -> &'static str {
    match c {
        Channel::ProblemType => "problem type",
        Channel::FieldRule => "errors[].rule",
        Channel::NatsOnly => "NATS rejections only",
    }
}

fn rows(rules: &[Rule]) -> String {
    rules
        .iter()
        .map(|r| {
            format!(
                "<tr id=\"{n}\"><th scope=\"row\"><a href=\"{PROBLEMS_PATH}/{n}\"><code>{n}</code></a></th><td>{}</td><td>{}</td><td>{}</td></tr>\n",
                r.status,
                channel(r.channel),
                prose(r.meaning),
                n = escape(r.name)
            )
        })
        .collect()
}

fn table(caption: &str, rules: &[Rule]) -> String {
    format!(
        "<table><caption>{caption}</caption><thead><tr><th scope=\"col\">Name</th><th scope=\"col\">Status</th>\
         <th scope=\"col\">Where</th><th scope=\"col\">Meaning</th></tr></thead><tbody>\n{}</tbody></table>\n",
        rows(rules)
    )
}

fn page(named: Option<&Rule>) -> String {
    let title = named.map_or("Problem types and rules".to_string(), |r| format!("Problem: {}", r.name));
    let intro = named.map_or(String::new(), |r| {
        format!(
            "<section class=\"named\" aria-labelledby=\"named\"><h2 id=\"named\"><code>{}</code> ({})</h2><p>{}</p></section>",
            escape(r.name),
            r.status,
            prose(r.meaning)
        )
    });
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>{t}</title>\
         <link rel=\"icon\" href=\"data:,\"><link rel=\"stylesheet\" href=\"/docs/assets/docs.css\"></head>\
         <body class=\"problems\"><main><h1>{t}</h1>{intro}\
         <p>Every error of the billing-credit API is <code>application/problem+json</code>. Its <code>type</code> is \
         <code>{PROBLEMS_PATH}/&lt;status&gt;</code> or, for a conflict or a broken business rule, \
         <code>{PROBLEMS_PATH}/&lt;rule&gt;</code>; input errors list each field and its rule in <code>errors</code>. \
         API explorer: <a href=\"/docs\">/docs</a>.</p>\n{}{}</main></body></html>\n",
        table("Problem types by status", STATUS_TYPES),
        table("Rules", RULES),
        t = escape(&title),
    )
}
