// Mizu Chat: plain JavaScript, no build step. Every user-supplied string is rendered with
// textContent, never as HTML.
(() => {
  "use strict";
  const $ = (id) => document.getElementById(id);
  const nameInput = $("name"), joinButton = $("join"), hint = $("join-hint");
  const messageInput = $("message"), messages = $("messages"), presence = $("presence"), status = $("status");
  const notice = $("notice");
  const TOKEN = /^[A-Za-z0-9_-]{1,32}$/;
  const HISTORY = 50, PRESENCE_REFRESH_MS = 15000;
  let online = new Set();
  let socket = null, user = null, attempt = 0, retryTimer = null, refreshTimer = null;
  // The last chat message's place in the stream ({offset, epoch}): where a reconnect resumes.
  let position = null;
  // Set while a reconnect's recovery is asked for, until the server answers.
  let recovering = false;

  function showNotice(text) {
    notice.textContent = text;
    notice.hidden = text === "";
  }

  function setStatus(state) {
    status.textContent = state;
    status.dataset.state = state;
  }

  function addMessage(userName, text, kind) {
    const item = document.createElement("li");
    if (kind) item.className = kind;
    const who = document.createElement("span");
    who.className = "user";
    who.textContent = userName;
    const body = document.createElement("span");
    body.className = "text";
    body.textContent = text;
    item.append(who, body);
    messages.append(item);
    messages.scrollTop = messages.scrollHeight;
  }

  function renderPresence() {
    presence.replaceChildren(...[...online].sort().map((name) => {
      const item = document.createElement("li");
      item.textContent = name;
      return item;
    }));
  }

  function send(topic, data) {
    if (socket && socket.readyState === WebSocket.OPEN) {
      socket.send(JSON.stringify({ topic, data }));
      return true;
    }
    return false;
  }

  function textOf(data) {
    if (data && typeof data === "object" && typeof data.text === "string") return data.text;
    return typeof data === "string" ? data : JSON.stringify(data);
  }

  // Asks again from the last contiguous position; the server answers and replays what is missing.
  function resync() {
    if (recovering || !position) return;
    recovering = true;
    send("subscribe", { topic: "chat:general", since: position, history: HISTORY });
  }

  // Each chat message once and in order: one already shown (same epoch, offset not past the
  // last) is skipped; one past a gap, or of another epoch, is not shown and the page resyncs.
  function isNew(envelope) {
    if (typeof envelope.offset !== "number" || typeof envelope.epoch !== "string") return true;
    if (position) {
      const sameEpoch = position.epoch === envelope.epoch;
      if (sameEpoch && envelope.offset <= position.offset) return false;
      if (!sameEpoch || envelope.offset > position.offset + 1) {
        resync();
        return false;
      }
    }
    position = { offset: envelope.offset, epoch: envelope.epoch };
    return true;
  }

  function onSubscribed(data) {
    if (data.topic !== "chat:general") return;
    if (recovering && !data.recovered) {
      // Too much was missed (or the history was lost): start over from the latest messages.
      messages.replaceChildren();
      position = null;
      showNotice("Some messages could not be recovered; showing the latest.");
    } else if (recovering) {
      showNotice("");
    }
    recovering = false;
  }

  function askPresence() {
    send("subscribe", { topic: "presence", snapshot: true });
  }

  function onEnvelope(envelope) {
    const { topic, data } = envelope;
    if (topic === "chat:general" && envelope.recovered === false && data === undefined) {
      // The server could not deliver some messages (its history no longer had them): the
      // stream goes on after the position it gives.
      if (typeof envelope.offset === "number" && typeof envelope.epoch === "string") {
        position = { offset: envelope.offset, epoch: envelope.epoch };
      }
      showNotice("Some messages could not be delivered.");
    } else if (topic === "chat:general" && data && typeof data === "object") {
      if (!isNew(envelope)) return;
      const kind = data.user === "server" ? "server" : data.user === user ? "self" : "";
      addMessage(String(data.user), textOf(data.data), kind);
    } else if (topic === "subscribed" && data && typeof data === "object") {
      onSubscribed(data);
    } else if (topic === "presence" && data && typeof data === "object") {
      if (data.type === "snapshot" && Array.isArray(data.users)) online = new Set(data.users.map(String));
      if (data.type === "join") online.add(String(data.user));
      // One of the user's tabs left: ask who is still here (another tab may be).
      if (data.type === "leave") askPresence();
      online.add(user);
      renderPresence();
    } else if (topic === "error") {
      addMessage("error", textOf(data), "error");
    }
  }

  function connect() {
    clearTimeout(retryTimer);
    setStatus(attempt === 0 ? "connecting" : "reconnecting");
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    socket = new WebSocket(`${scheme}://${location.host}/ws?token=${encodeURIComponent(user)}`);
    socket.onopen = () => {
      attempt = 0;
      setStatus("connected");
      // Subscriptions live on the server per connection: ask again after every reconnect,
      // from the last message seen (the server replays what was missed), or for the latest.
      recovering = position !== null;
      send("subscribe", position ? { topic: "chat:general", since: position, history: HISTORY } : { topic: "chat:general", history: HISTORY });
      send("subscribe", { topic: "presence", snapshot: true });
      send("subscribe", { topic: `user:${user}` });
      // A user whose server died leaves no event: the list is refreshed now and then.
      clearInterval(refreshTimer);
      refreshTimer = setInterval(askPresence, PRESENCE_REFRESH_MS);
      messageInput.disabled = false;
      messageInput.focus();
    };
    socket.onmessage = (event) => {
      try { onEnvelope(JSON.parse(event.data)); } catch (error) { /* not JSON: ignore */ }
    };
    socket.onclose = (event) => {
      socket = null;
      clearInterval(refreshTimer);
      messageInput.disabled = true;
      if (event.code === 1009) addMessage("error", "message too large", "error");
      // Exponential backoff with jitter, capped at 10 s. After a server shutdown (1001) every
      // page of that server comes back at once: the first try is spread over 0-2 s.
      const delay = event.code === 1001 && attempt === 0
        ? 2000 * Math.random()
        : Math.min(10000, 250 * 2 ** attempt) * (0.5 + Math.random() / 2);
      attempt += 1;
      setStatus("reconnecting");
      retryTimer = setTimeout(connect, delay);
    };
  }

  function join() {
    const name = nameInput.value.trim();
    if (!TOKEN.test(name)) {
      hint.textContent = "Use 1 to 32 letters, digits, _ or -.";
      hint.classList.add("error");
      return;
    }
    user = name;
    hint.classList.remove("error");
    hint.textContent = `You are ${name}.`;
    nameInput.disabled = true;
    joinButton.disabled = true;
    online.add(name);
    renderPresence();
    attempt = 0;
    connect();
  }

  nameInput.addEventListener("keydown", (event) => { if (event.key === "Enter") join(); });
  joinButton.addEventListener("click", join);
  messageInput.addEventListener("keydown", (event) => {
    if (event.key !== "Enter") return;
    const text = messageInput.value;
    if (text.trim() === "") return;
    if (send("chat", { text })) messageInput.value = "";
  });
})();
