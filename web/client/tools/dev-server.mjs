// Development server for the browser client: serves ../dist and forwards
// /xmpp-websocket, /api and /config.json to a running Confab, so the page
// can be worked on with `npm run build` alone, without rebuilding the
// binary that embeds it.
//
//   node tools/dev-server.mjs [--port 8081] [--bridge 127.0.0.1:8080]

import { createServer, request } from "node:http";
import { connect } from "node:net";
import { readFile } from "node:fs/promises";
import { dirname, extname, join, normalize } from "node:path";
import { fileURLToPath } from "node:url";

const args = Object.fromEntries(process.argv.slice(2).reduce((acc, a, i, all) => (a.startsWith("--") ? [...acc, [a.slice(2), all[i + 1]]] : acc), []));
const port = Number(args.port ?? 8081);
const [bridgeHost, bridgePort] = (args.bridge ?? "127.0.0.1:8080").split(":");
const dist = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "dist");
const TYPES = { ".html": "text/html; charset=utf-8", ".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml", ".png": "image/png" };

const forward = (req, res) => {
  const up = request({ host: bridgeHost, port: bridgePort, path: req.url, method: req.method, headers: req.headers }, (r) => {
    res.writeHead(r.statusCode, r.headers);
    r.pipe(res);
  });
  up.on("error", () => res.writeHead(502).end("bridge unreachable\n"));
  req.pipe(up);
};

const server = createServer(async (req, res) => {
  const path = new URL(req.url, "http://x").pathname;
  if (path.startsWith("/api/") || path === "/api" || path === "/config.json" || path === "/metrics" || path === "/health") return forward(req, res);
  let file;
  if (path === "/") file = "index.html";
  else if (path.startsWith("/assets/")) file = normalize(path.slice(1));
  else if (path === "/admin") file = "admin.html";
  else file = "room.html";
  if (file.startsWith("..")) return res.writeHead(404).end();
  try {
    const body = await readFile(join(dist, file));
    res.writeHead(200, { "content-type": TYPES[extname(file)] ?? "application/octet-stream", "cache-control": "no-store" }).end(body);
  } catch {
    res.writeHead(404).end("not found\n");
  }
});

// WebSocket upgrades go to the bridge byte for byte.
server.on("upgrade", (req, socket, head) => {
  const up = connect(Number(bridgePort), bridgeHost, () => {
    const lines = [`${req.method} ${req.url} HTTP/1.1`, ...Object.entries(req.headers).map(([k, v]) => `${k}: ${v}`), "", ""];
    up.write(lines.join("\r\n"));
    if (head.length) up.write(head);
    up.pipe(socket);
    socket.pipe(up);
  });
  up.on("error", () => socket.destroy());
  socket.on("error", () => up.destroy());
});

server.listen(port, "127.0.0.1", () => console.log(`Confab client on http://127.0.0.1:${port}/ (bridge ${bridgeHost}:${bridgePort})`));
