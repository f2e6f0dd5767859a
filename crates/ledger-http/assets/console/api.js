// The ledger's REST API, for the signed-in site. The token goes in the Authorization
// header only; a refusal becomes an Error carrying the problem's detail.

/** How long one call may take before the console gives up on it. */
const REQUEST_TIMEOUT_MS = 15000;

/** The event dispatched on window when the server refuses the token (401). */
export const UNAUTHORIZED = "ledger:unauthorized";

export class Api {
  constructor(session) {
    this.token = session.token;
    this.base = `/site/${encodeURIComponent(session.site)}/ahds/v1`;
  }

  /** GET a path under the site, with query parameters (empty ones left out). */
  async get(path, params = {}) {
    const query = new URLSearchParams();
    for (const [key, value] of Object.entries(params)) {
      for (const v of [value].flat()) if (v !== undefined && v !== null && v !== "") query.append(key, v);
    }
    const search = query.toString();
    const url = `${this.base}${path}${search ? `?${search}` : ""}`;
    const response = await fetch(url, {
      headers: { Authorization: `Bearer ${this.token}`, Accept: "application/json" },
      signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
      cache: "no-store",
    });
    const body = await response.json().catch(() => ({}));
    if (response.status === 401) {
      // Expired or revoked: the console goes back to sign-in (app.js listens).
      window.dispatchEvent(new CustomEvent(UNAUTHORIZED, { detail: body.detail ?? "" }));
    }
    if (!response.ok) {
      const rules = (body.errors ?? []).map((e) => `${e.field}: ${e.rule}`).join(", ");
      throw new Error(`${response.status} ${body.title ?? response.statusText}: ${body.detail ?? ""}${rules ? ` (${rules})` : ""}`);
    }
    return body;
  }
}
