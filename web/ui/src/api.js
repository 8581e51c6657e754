// GET a JSON answer of meshtwin's API; a failure throws the answer's
// `error` text (or the HTTP status).

export async function getJson(url) {
  const response = await fetch(url);
  const body = await response.json().catch(() => ({ error: `${response.status} ${response.statusText}` }));
  if (!response.ok) throw new Error(body.error ?? `${response.status}`);
  return body;
}
