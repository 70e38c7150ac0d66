// lanmsg chat page. It speaks the two-way extension (PROTOCOL.md) over a
// WebSocket at /ws: each message sent is one frame's payload (the hello,
// then text or control frames), each message received one JSON event.
//
// Text from the network is only ever inserted with textContent, never as
// HTML. Each event type has a handler in `handlers`, each command of the
// text field one in `commands`.
"use strict";

// The extension's version this page speaks: rooms, history and direct
// messages are version 3; a version 2 server answers in its one room.
const VERSION = 3;
// How many older messages "Show older messages" asks for.
const PAGE = 20;

const $ = (id) => document.getElementById(id);

const state = {
  ws: null,
  name: "",        // the name asked for
  me: "",          // the name the server gave
  room: "",        // the room joined ("" until the server names it)
  people: new Set(),
  more: 0,         // people the server did not list
  dmSeq: 0,        // numbers the direct messages sent
  dms: new Map(),  // id -> the status element of a direct message sent
  older: null,     // while older messages arrive: the element they go before
};

// ---- security notice ----------------------------------------------------

function showSecurity() {
  const el = $("security");
  if (location.protocol === "https:") {
    el.textContent = "Encrypted: this page and its messages travel over HTTPS.";
    el.className = "secure";
  } else {
    el.textContent = "Not encrypted: this page uses plain HTTP, so anyone on this network can read what is said here.";
    el.className = "plain";
  }
}

// ---- rendering (text only) ---------------------------------------------

function time(t) {
  const d = t ? new Date(t) : new Date();
  if (isNaN(d)) return "";
  return d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
}

// addLine adds a line of parts [class, text] to the log: at the end, or
// before the older-messages anchor while older messages arrive.
function addLine(kind, parts, t, before) {
  const log = $("log");
  const atEnd = log.scrollHeight - log.scrollTop - log.clientHeight < 40;
  const li = document.createElement("li");
  li.className = kind;
  const meta = document.createElement("span");
  meta.className = "meta";
  meta.textContent = time(t) + " ";
  li.append(meta);
  for (const [cls, text] of parts) {
    const s = document.createElement("span");
    if (cls) s.className = cls;
    s.textContent = text;
    li.append(s);
  }
  if (before) {
    log.insertBefore(li, before);
  } else {
    log.append(li);
    if (atEnd) li.scrollIntoView({ block: "end" });
  }
  return li;
}

function say(name, text, t, extra, before) {
  return addLine("msg" + (extra ? " " + extra : ""), [["who", name], ["", ": " + text]], t, before);
}

function note(text, t) {
  addLine("event", [["", text]], t);
}

function problem(text, t) {
  addLine("error", [["", text]], t);
}

function status(text) {
  $("status").textContent = text;
}

function personButton(n) {
  const b = document.createElement("button");
  b.type = "button";
  b.textContent = n === state.me ? n + " (you)" : n;
  b.title = "Send " + n + " a direct message";
  b.addEventListener("click", () => {
    const input = $("text");
    input.value = "/msg " + n + " ";
    input.focus();
  });
  return b;
}

function renderWho() {
  const ul = $("who");
  ul.replaceChildren();
  for (const n of [...state.people].sort()) {
    const li = document.createElement("li");
    li.append(personButton(n));
    ul.append(li);
  }
  if (state.more > 0) {
    const li = document.createElement("li");
    li.textContent = "and " + state.more + " more";
    ul.append(li);
  }
  $("count").textContent = "(" + (state.people.size + state.more) + ")";
}

function renderRooms(rooms) {
  const ul = $("rooms");
  ul.replaceChildren();
  for (const r of rooms) {
    const li = document.createElement("li");
    const b = document.createElement("button");
    b.type = "button";
    b.textContent = "#" + r.name + " (" + r.members + ")";
    b.addEventListener("click", () => switchRoom(r.name));
    li.append(b);
    ul.append(li);
  }
  ul.hidden = $("roomshead").hidden = rooms.length === 0;
}

// names lists an event's people: "name", or "names" and "more".
function names(ev) {
  if (ev.names && ev.names.length) return ev.names;
  return ev.name ? [ev.name] : [];
}

function andMore(ev) {
  return ev.more ? " and " + ev.more + " more" : "";
}

// text is a message's text: "text", or base64 "data" (bytes that JSON
// would escape badly), decoded as UTF-8.
function text(ev) {
  if (ev.data) {
    const bin = atob(ev.data);
    const bytes = Uint8Array.from(bin, (c) => c.charCodeAt(0));
    return new TextDecoder().decode(bytes);
  }
  return ev.text || "";
}

// ---- events from the server ---------------------------------------------

const handlers = {
  welcome(ev) {
    const moved = state.me !== "" && ev.room !== undefined && ev.room !== state.room;
    state.me = ev.name || state.me;
    state.room = ev.room || "";
    state.people = new Set(ev.names || []);
    state.more = ev.more || 0;
    if (moved) {
      $("log").replaceChildren();
      $("older").hidden = true;
    }
    renderWho();
    $("where").textContent = state.room ? "#" + state.room : "";
    $("room").value = state.room || $("room").value;
    status("You are " + state.me + (state.room ? " in #" + state.room : "") + ".");
    note("You joined" + (state.room ? " #" + state.room : "") + " as " + state.me + ".", ev.time);
    $("text").focus();
    if (ev.room) sendFrame("!ROOMS"); // a server with rooms names the room

  },
  msg(ev) {
    if (ev.history) {
      say(ev.name, text(ev), ev.time, "history", state.older);
      return;
    }
    say(ev.name, text(ev), ev.time);
  },
  history(ev) {
    // The end of a run of history: more older ones may be asked for.
    if (state.older) {
      state.older.remove();
      state.older = null;
    }
    $("older").hidden = !(ev.more > 0);
  },
  join(ev) {
    const ns = names(ev).filter((n) => n !== state.me);
    for (const n of names(ev)) state.people.add(n);
    renderWho();
    if (ns.length) note(ns.join(", ") + andMore(ev) + " joined.", ev.time);
  },
  leave(ev) {
    for (const n of names(ev)) state.people.delete(n);
    renderWho();
    note(names(ev).join(", ") + andMore(ev) + " left.", ev.time);
  },
  who(ev) {
    state.people = new Set(ev.names || []);
    state.more = ev.more || 0;
    renderWho();
  },
  rooms(ev) {
    renderRooms(ev.rooms || []);
  },
  dm(ev) {
    say(ev.name + " → you", text(ev), ev.time, "dm");
  },
  delivered(ev) {
    dmState(ev.id, "delivered");
  },
  queued(ev) {
    dmState(ev.id, "waiting: " + ev.name + " is offline");
  },
  ping() {
    sendFrame("!PONG");
  },
  ack() {},
  error(ev) {
    if (ev.id && state.dms.has(ev.id)) {
      dmState(ev.id, "not sent: " + (ev.text || "refused"));
      return;
    }
    problem("Server: " + (ev.text || "refused"), ev.time);
  },
};

function dmState(id, what) {
  const el = state.dms.get(id);
  if (el) el.textContent = " (" + what + ")";
}

// ---- frames to the server -----------------------------------------------

function sendFrame(payload) {
  if (state.ws && state.ws.readyState === WebSocket.OPEN) {
    state.ws.send(payload);
    return true;
  }
  return false;
}

// sendText sends a chat message: text starting with "!" gets one more "!"
// (control frames start with "!").
function sendText(t) {
  return sendFrame(t.startsWith("!") ? "!" + t : t);
}

function switchRoom(room) {
  room = room.trim().replace(/^#/, "");
  if (!room || room === state.room) return;
  if (sendFrame("!JOIN " + room)) {
    status("Joining #" + room + "…");
  }
}

// The commands of the text field, as in lanmsg chat.
const commands = {
  help() {
    note("Commands: /msg NAME TEXT (direct message), /join ROOM, /rooms, /who, /history [N]; // sends a line starting with /.");
  },
  who() {
    sendFrame("!WHO");
  },
  rooms() {
    sendFrame("!ROOMS");
  },
  join(arg) {
    if (!arg) return problem("Which room? /join ROOM");
    switchRoom(arg);
  },
  history(arg) {
    const n = parseInt(arg || String(PAGE), 10);
    if (!(n > 0)) return problem("/history N: N is a number of messages");
    askOlder(n);
  },
  msg(arg) {
    // The name is the longest one here that the line starts with, or its
    // first word.
    let to = "";
    for (const n of state.people) {
      if ((arg === n || arg.startsWith(n + " ")) && n.length > to.length) to = n;
    }
    if (!to) to = arg.split(" ")[0];
    const body = arg.slice(to.length).trim();
    if (!to || !body) return problem("/msg NAME TEXT");
    const id = ++state.dmSeq;
    if (!sendFrame("!DM " + JSON.stringify({ to: to, text: body, id: id }))) {
      return problem("Not connected: your message was not sent.");
    }
    const li = say("you → " + to, body, null, "dm mine");
    const st = document.createElement("span");
    st.className = "state";
    st.textContent = " (sending…)";
    li.append(st);
    state.dms.set(id, st);
  },
};

function askOlder(n) {
  if (state.older) return;
  const anchor = document.createElement("li");
  anchor.className = "event";
  anchor.textContent = "…";
  $("log").prepend(anchor);
  state.older = anchor;
  if (!sendFrame("!HISTORY " + n)) {
    anchor.remove();
    state.older = null;
  }
}

function connect(name, room) {
  if (state.ws) state.ws.close();
  const url = (location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/ws";
  const ws = new WebSocket(url);
  state.ws = ws;
  state.name = name;
  state.me = "";
  state.room = "";
  $("log").replaceChildren();
  status("Connecting…");
  ws.onopen = () => {
    const hello = { v: VERSION, name: name, chat: true };
    if (room) hello.room = room;
    ws.send("!HELLO " + JSON.stringify(hello));
  };
  ws.onmessage = (m) => {
    let ev;
    try {
      ev = JSON.parse(m.data);
    } catch {
      return;
    }
    const h = Object.hasOwn(handlers, ev.t) ? handlers[ev.t] : null;
    if (h) h(ev);
  };
  ws.onclose = (e) => {
    if (state.ws !== ws) return;
    state.ws = null;
    status("Disconnected" + (e.reason ? ": " + e.reason : "") + ". Press Join to connect again.");
    $("joinbtn").textContent = "Join";
  };
}

// ---- the forms ----------------------------------------------------------

function init() {
  showSecurity();
  const name = $("name");
  try {
    name.value = localStorage.getItem("lanmsg-name") || "";
  } catch {}
  $("join").addEventListener("submit", (e) => {
    e.preventDefault();
    const n = name.value.trim();
    if (!n) {
      name.focus();
      return;
    }
    try {
      localStorage.setItem("lanmsg-name", n);
    } catch {}
    const room = $("room").value.trim().replace(/^#/, "");
    $("chat").hidden = false;
    $("joinbtn").textContent = "Switch";
    if (state.ws && state.ws.readyState === WebSocket.OPEN && n === state.name) {
      switchRoom(room || $("room").dataset.default);
      return;
    }
    connect(n, room);
  });
  $("older").addEventListener("click", () => askOlder(PAGE));
  $("say").addEventListener("submit", (e) => {
    e.preventDefault();
    const input = $("text");
    let t = input.value;
    if (!t) return;
    if (t.startsWith("/") && !t.startsWith("//")) {
      const [, cmd, arg] = t.match(/^\/(\S*)\s*(.*)$/s);
      if (!Object.hasOwn(commands, cmd)) {
        problem("Unknown command /" + cmd + ": /help lists them; // sends a line starting with /.");
        return;
      }
      commands[cmd](arg.trim());
      input.value = "";
      return;
    }
    if (t.startsWith("//")) t = t.slice(1);
    if (!sendText(t)) {
      status("Not connected: your message was not sent.");
      return;
    }
    say(state.me, t, null, "mine");
    input.value = "";
  });
}

init();
