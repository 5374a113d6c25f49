// The kinds of requests social-auto-upload's pages make, on the page's own origin:
// - JSON calls through an HTTP client that, as axios does for same-origin requests, copies the
//   XSRF-TOKEN cookie into an X-XSRF-TOKEN header (and sends no Authorization header when no
//   token is stored);
// - an EventSource, which cannot send headers: only the session cookie goes with it.

function cookie(name) {
  for (const part of document.cookie.split(";")) {
    const [key, ...rest] = part.trim().split("=");
    if (key === name) return decodeURIComponent(rest.join("="));
  }
  return null;
}

async function call(method, url, body, { csrfHeader = true } = {}) {
  const headers = { "Content-Type": "application/json" };
  const token = cookie("XSRF-TOKEN");
  if (csrfHeader && token) headers["X-XSRF-TOKEN"] = token;
  const stored = localStorage.getItem("token");
  if (stored) headers.Authorization = `Bearer ${stored}`;
  const response = await fetch(url, {
    method,
    headers,
    credentials: "same-origin",
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  let data = null;
  try {
    data = await response.json();
  } catch {
    // not JSON: the status says enough
  }
  return { status: response.status, data };
}

function show(id, status, text) {
  const element = document.getElementById(id);
  element.textContent = text;
  element.dataset.status = String(status);
}

async function listAccounts() {
  const { status, data } = await call("GET", "/getAccounts");
  show("accounts", status, JSON.stringify(data));
}

async function addAccount(id, name, csrfHeader) {
  const { status, data } = await call(
    "POST",
    "/addAccount",
    { type: 3, userName: name, name },
    { csrfHeader },
  );
  show(id, status, JSON.stringify(data));
}

function openStream() {
  // The stream's path: the account login stream where it exists, else a plain GET that needs
  // the session (the index: DRF's API views answer an EventSource's Accept header with 406).
  const path = document.body.dataset.stream || "/";
  const source = new EventSource(path);
  source.onmessage = (event) => {
    show("stream-result", "message", event.data);
    source.close();
  };
  source.onerror = () => {
    // A response that is not text/event-stream ends here; the test reads its status itself.
    show("stream-result", "closed", "");
    source.close();
  };
}

document.getElementById("post-with-token").addEventListener("click", () =>
  addAccount("post-with-token-result", "with-header", true),
);
document.getElementById("post-without-token").addEventListener("click", () =>
  addAccount("post-without-token-result", "without-header", false),
);
document.getElementById("open-stream").addEventListener("click", openStream);
listAccounts();
