// The example browser client of login (README «Aplicaciones de
// navegador»): authorization code + PKCE (RFC 7636, S256) with fetch and
// Web Crypto only, no library and no build step. cmd/local serves it for
// the dev client, with a Content-Security-Policy that allows no inline
// script: everything is here.
"use strict";

// What cmd/local tells the page: login's issuer (every endpoint is
// <issuer>/<name>), the client id, and GetToken's address.
const config = {
  issuer: meta("impo-issuer"),
  clientId: meta("impo-client-id"),
  getToken: meta("impo-gettoken"),
};
// Both are registered for the dev client exactly as written here.
const redirectURI = location.origin + "/example/callback";
const home = location.origin + "/example/";

function meta(name) {
  return document.querySelector(`meta[name="${name}"]`).content;
}

function byId(id) {
  return document.getElementById(id);
}

// base64url without padding (RFC 7636 appendix A).
function base64url(bytes) {
  let s = "";
  for (const b of bytes) s += String.fromCharCode(b);
  return btoa(s).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

// n random bytes as base64url: 32 bytes make a 43-character verifier.
function randomString(n) {
  return base64url(crypto.getRandomValues(new Uint8Array(n)));
}

// The S256 code challenge: base64url(SHA-256(verifier)).
async function s256(verifier) {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(verifier));
  return base64url(new Uint8Array(digest));
}

// The ID token's claims, decoded to show who is logged in. The page got
// the token straight from login's token endpoint and trusts nothing in it
// (no signature check here): the functions decide, by the access token.
function idClaims(idToken) {
  const part = idToken.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
  const bytes = Uint8Array.from(atob(part), (c) => c.charCodeAt(0));
  return JSON.parse(new TextDecoder().decode(bytes));
}

// sessionStorage: this tab only, gone when it closes. The tokens could
// live in memory alone, but a reload would then log the person out.
const saved = {
  get(key) {
    const v = sessionStorage.getItem(key);
    return v ? JSON.parse(v) : null;
  },
  set(key, v) {
    sessionStorage.setItem(key, JSON.stringify(v));
  },
  remove(key) {
    sessionStorage.removeItem(key);
  },
};

// 1. Entrar: a verifier, state and nonce for this request only, kept in
// sessionStorage for the callback, and the person goes to login's page.
async function login() {
  const request = { verifier: randomString(32), state: randomString(16), nonce: randomString(16) };
  saved.set("pedido", request);
  const params = new URLSearchParams({
    response_type: "code",
    client_id: config.clientId,
    redirect_uri: redirectURI,
    scope: "openid",
    state: request.state,
    nonce: request.nonce,
    code_challenge: await s256(request.verifier),
    code_challenge_method: "S256",
  });
  location.assign(`${config.issuer}/authorize?${params}`);
}

// 2. The callback: the answer must be to this tab's request (state) and
// come from this issuer (iss, RFC 9207); then the code and the verifier
// buy the tokens.
async function callback() {
  const params = new URLSearchParams(location.search);
  // The code must stay neither in the address bar nor in the history.
  history.replaceState(null, "", home);
  const request = saved.get("pedido");
  saved.remove("pedido"); // one answer per request
  if (!request || params.get("state") !== request.state) {
    throw new Error("La respuesta no corresponde a un pedido de esta pestaña (state distinto): vuelva a entrar.");
  }
  if (params.get("iss") !== config.issuer) {
    throw new Error(`La respuesta no viene del emisor esperado (iss=${params.get("iss")}).`);
  }
  if (params.has("error")) {
    throw new Error(`login respondió ${params.get("error")}: ${params.get("error_description") || ""}`);
  }
  const tokens = await tokenRequest({
    grant_type: "authorization_code",
    code: params.get("code"),
    redirect_uri: redirectURI,
    code_verifier: request.verifier,
  });
  if (!tokens.id_token) {
    throw new Error("login no entregó un token de ID: ¿se pidió scope=openid?");
  }
  if (idClaims(tokens.id_token).nonce !== request.nonce) {
    throw new Error("El token de ID no lleva el nonce de este pedido.");
  }
  return keep(tokens, null);
}

// tokenRequest posts a grant to the token endpoint, as a form, with the
// client id and no secret (a public client) and no cookies.
async function tokenRequest(fields) {
  const resp = await fetch(`${config.issuer}/token`, {
    method: "POST",
    credentials: "omit",
    body: new URLSearchParams({ client_id: config.clientId, ...fields }),
  });
  const body = await resp.json().catch(() => ({}));
  if (!resp.ok) {
    const e = new Error(`/token respondió ${resp.status} ${body.error || ""}: ${body.error_description || ""}`);
    e.code = body.error;
    throw e;
  }
  return body;
}

// keep stores a token response; a refresh may leave out the ID token.
function keep(tokens, previous) {
  const session = {
    access: tokens.access_token,
    refresh: tokens.refresh_token || (previous && previous.refresh),
    idToken: tokens.id_token || (previous && previous.idToken),
    expires: Date.now() + tokens.expires_in * 1000,
  };
  saved.set("sesion", session);
  return session;
}

function time(ms) {
  return new Date(ms).toLocaleTimeString("es-UY");
}

// 3. GetToken, with the access token (renewed first if it is about to
// expire).
async function callGetToken(out) {
  let session = saved.get("sesion");
  if (Date.now() > session.expires - 60000) {
    session = await renew(session);
  }
  const resp = await fetch(config.getToken, {
    method: "POST",
    credentials: "omit",
    headers: { Authorization: `Bearer ${session.access}`, "Content-Type": "application/json" },
    body: JSON.stringify({ scopes: ["https://www.googleapis.com/auth/cloud-platform"] }),
  });
  out.dataset.status = resp.status;
  const body = await resp.json().catch(() => ({}));
  if (!resp.ok) {
    throw new Error(`GetToken respondió ${resp.status}: ${body.detail || body.title || ""}`);
  }
  return `GetToken respondió ${resp.status}: un token de Google Cloud (${body.token_type}) que vence en ${body.expires_in} s.`;
}

// 4. Renovar: the refresh token buys a new access token and a new refresh
// token; the old one is dead (rotation).
async function renew(session) {
  let tokens;
  try {
    tokens = await tokenRequest({ grant_type: "refresh_token", refresh_token: session.refresh });
  } catch (e) {
    if (e.code === "invalid_grant") {
      saved.remove("sesion");
      show(null, "La sesión terminó (venció o fue revocada): vuelva a entrar.");
    }
    throw e;
  }
  const renewed = keep(tokens, session);
  show(renewed);
  return renewed;
}

// 5. Salir: revoke the refresh token (RFC 7009), then end the session at
// login, which comes back to this page.
async function logout() {
  const session = saved.get("sesion");
  saved.remove("sesion");
  const resp = await fetch(`${config.issuer}/revoke`, {
    method: "POST",
    credentials: "omit",
    body: new URLSearchParams({ token: session.refresh, token_type_hint: "refresh_token", client_id: config.clientId }),
  });
  if (!resp.ok) {
    // The logout below revokes the family too: go on.
    console.warn(`/revoke respondió ${resp.status}`);
  }
  saved.set("salida", true);
  // A form POST, not a GET: the ID token in a query would be written to
  // every request log on the way (OpenID Connect RP-Initiated Logout §2
  // allows both).
  const form = document.createElement("form");
  form.method = "post";
  form.action = `${config.issuer}/logout`;
  for (const [name, value] of Object.entries({
    id_token_hint: session.idToken,
    post_logout_redirect_uri: home,
    client_id: config.clientId,
  })) {
    const field = document.createElement("input");
    field.type = "hidden";
    field.name = name;
    field.value = value;
    form.append(field);
  }
  document.body.append(form);
  form.submit();
}

function show(session, status) {
  byId("anonimo").hidden = !!session;
  byId("sesion").hidden = !session;
  byId("estado").textContent = status || (session ? "Sesión iniciada." : "No ha iniciado sesión.");
  if (session) {
    const claims = idClaims(session.idToken);
    byId("usuario").textContent = claims.name && claims.name !== claims.sub ? `${claims.name} (${claims.sub})` : claims.sub;
    byId("vence").textContent = time(session.expires);
  }
}

function fail(e) {
  const el = byId("error");
  el.textContent = e.message;
  el.hidden = false;
}

// act runs a button's action and writes its outcome in #resultado:
// data-accion and data-estado (ok or error) are set when it is over.
async function act(name, action) {
  const out = byId("resultado");
  const buttons = document.querySelectorAll("#sesion button");
  for (const k of ["accion", "estado", "status"]) delete out.dataset[k];
  out.textContent = "…";
  byId("error").hidden = true;
  buttons.forEach((b) => (b.disabled = true));
  try {
    out.textContent = await action(out);
    out.dataset.estado = "ok";
  } catch (e) {
    out.textContent = e.message;
    out.dataset.estado = "error";
    fail(e); // also where it shows when the session is gone
  } finally {
    buttons.forEach((b) => (b.disabled = false));
    out.dataset.accion = name;
  }
}

async function start() {
  byId("entrar").addEventListener("click", () => login().catch(fail));
  byId("gettoken").addEventListener("click", () => act("gettoken", callGetToken));
  byId("renovar").addEventListener("click", () =>
    act("renovar", async () => `Token de acceso nuevo; vence a las ${time((await renew(saved.get("sesion"))).expires)}.`),
  );
  byId("salir").addEventListener("click", () => logout().catch(fail));

  if (location.pathname === "/example/callback") {
    byId("estado").textContent = "Canjeando el código…";
    try {
      show(await callback());
    } catch (e) {
      show(null, "No se pudo iniciar sesión.");
      fail(e);
    }
    return;
  }
  if (saved.get("salida")) {
    saved.remove("salida");
    history.replaceState(null, "", home);
    show(null, "Sesión cerrada.");
    return;
  }
  show(saved.get("sesion"));
}

start();
