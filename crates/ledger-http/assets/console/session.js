// The signed-in token and site, in this tab's session storage only (never a URL,
// never localStorage), and what the token's claims grant.

const TOKEN = "ledger.console.token";
const SITE = "ledger.console.site";

export const SCOPE_READ = "billing-credit:read";
export const SCOPE_AUDIT = "billing-credit:audit";

/** The claims of a JWT, read (not verified: the server verifies every call). */
export function claims(token) {
  const part = token.split(".")[1];
  if (!part) throw new Error("this is not a JWT (no payload part)");
  const json = atob(part.replace(/-/g, "+").replace(/_/g, "/").padEnd(Math.ceil(part.length / 4) * 4, "="));
  const c = JSON.parse(new TextDecoder().decode(Uint8Array.from(json, (ch) => ch.charCodeAt(0))));
  return {
    sub: String(c.sub ?? ""),
    exp: Number(c.exp ?? 0),
    sites: Array.isArray(c.sites) ? c.sites.map(String) : [],
    scopes: String(c.scope ?? "").split(" ").filter(Boolean),
  };
}

export function save(token, site) {
  sessionStorage.setItem(TOKEN, token);
  sessionStorage.setItem(SITE, site);
}

export function clear() {
  sessionStorage.removeItem(TOKEN);
  sessionStorage.removeItem(SITE);
}

/** The current session, or null: { token, site, claims }. */
export function current() {
  const token = sessionStorage.getItem(TOKEN);
  const site = sessionStorage.getItem(SITE);
  if (!token || !site) return null;
  try {
    return { token, site, claims: claims(token) };
  } catch {
    return null;
  }
}

export function can(session, scope) {
  return session.claims.scopes.includes(scope);
}
