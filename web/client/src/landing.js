// The landing page (/): pick a room and a name, see which rooms are in use.

const $ = (sel) => document.querySelector(sel);
const WORDS = ["amber", "brisk", "calm", "dusty", "eager", "fuzzy", "gentle", "hazel", "ivory", "jolly", "lucky", "mellow"];
const ANIMALS = ["otter", "heron", "lynx", "panda", "finch", "koala", "gecko", "bison", "robin", "tapir"];

function randomRoom() {
  const pick = (a) => a[Math.floor(Math.random() * a.length)];
  return `${pick(WORDS)}-${pick(ANIMALS)}-${Math.floor(Math.random() * 90 + 10)}`;
}

/** What a person types -> a room name (an XMPP localpart the bridge accepts). */
export function roomName(text) {
  return text.trim().toLowerCase().replace(/\s+/g, "-").replace(/[^a-z0-9._-]/g, "").slice(0, 64);
}

async function rooms() {
  try {
    const res = await fetch("/api/rooms", { cache: "no-store" });
    if (!res.ok) return;
    const data = await res.json();
    const list = Array.isArray(data) ? data : data.rooms ?? [];
    const ul = $("#rooms");
    ul.replaceChildren();
    if (!list.length) ul.innerHTML = `<li class="empty">No one is talking right now.</li>`;
    for (const r of list) {
      const name = r.name ?? r.room;
      const count = r.participants ?? r.occupants ?? r.count ?? 0;
      const n = Array.isArray(count) ? count.length : count;
      const li = document.createElement("li");
      li.innerHTML = `<a></a><span class="pill"></span>`;
      li.querySelector("a").textContent = name;
      li.querySelector("a").href = `/${encodeURIComponent(name)}`;
      li.querySelector("span").textContent = `${n} ${n === 1 ? "person" : "people"}`;
      ul.append(li);
    }
  } catch {
    // The list is a convenience; the form works without it.
  }
}

$("#room").value = randomRoom();
$("#name").value = localStorage.getItem("confab.name") ?? "";
$("#codec").value = localStorage.getItem("confab.codec") ?? "vp8";
$("#start").addEventListener("submit", (e) => {
  e.preventDefault();
  const room = roomName($("#room").value);
  const name = $("#name").value.trim();
  if (!room || !name) return;
  localStorage.setItem("confab.name", name);
  localStorage.setItem("confab.codec", $("#codec").value);
  location.href = `/${encodeURIComponent(room)}?${new URLSearchParams({ name, codec: $("#codec").value })}`;
});
rooms();
setInterval(rooms, 5000);
