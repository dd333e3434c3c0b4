// Chat page behaviour. Loaded as a file (CSP forbids inline script); htmx does the rest.
(function () {
  "use strict";

  // The words this script shows, in the page's language (the page renders them as JSON).
  const wordsEl = document.getElementById("ui-strings");
  const words = wordsEl ? JSON.parse(wordsEl.textContent) : {};

  // Code blocks' Copy buttons are part of the reply's stored HTML: label them in this page's language.
  function labelCopyButtons(root) {
    root.querySelectorAll("[data-copy-code]").forEach((button) => {
      button.textContent = words.copy;
      button.setAttribute("aria-label", words.copyCode);
    });
  }

  // The language chooser saves as soon as a language is picked; without script, its button does.
  document.addEventListener("change", (event) => {
    if (event.target.matches && event.target.matches("[data-language-choice]")) event.target.form.requestSubmit();
  });

  function newClientId() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
    // Older browsers on plain-http intranets lack randomUUID; getRandomValues is enough.
    const b = crypto.getRandomValues(new Uint8Array(16));
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    const h = Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
    return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
  }

  function autosize(textarea) {
    textarea.style.height = "auto";
    textarea.style.height = Math.min(textarea.scrollHeight, window.innerHeight * 0.4) + "px";
  }

  function ensureClientIds() {
    document.querySelectorAll("[data-client-id-input]").forEach((input) => {
      if (!input.value) input.value = newClientId();
    });
  }

  // While a reply is being written, Enter sends nothing: say so beside the composer, draft kept.
  function showBusy(text) {
    const hint = document.querySelector("[data-composer-busy]");
    if (hint) hint.textContent = text;
  }
  function replyInFlight() {
    return document.querySelector("#reply-controls[data-streaming='true']") !== null;
  }

  // Enter sends, Shift+Enter makes a new line; nothing is sent while a reply is being written.
  document.addEventListener("keydown", (event) => {
    const target = event.target;
    if (target.matches && target.matches("[data-composer-input]")) {
      if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
        event.preventDefault();
        const form = target.form;
        if (replyInFlight()) {
          showBusy(words.busy);
          return;
        }
        const sendButton = document.getElementById("send-button");
        if (!sendButton || sendButton.disabled) return;
        if (!target.value.trim() && !form.querySelector("input[name='attachments']")) return;
        form.requestSubmit();
      }
    }
    if (target.matches && target.matches("[data-edit-input]")) {
      if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
        event.preventDefault();
        if (target.value.trim()) target.form.requestSubmit();
      } else if (event.key === "Escape") {
        showEditor(target.closest(".message"), false);
      }
    }
    if (target.matches && target.matches("[data-rename-input]") && event.key === "Escape") {
      const cancel = target.form.querySelector("[data-rename-cancel]");
      if (cancel) cancel.click();
    }
  });

  document.addEventListener("input", (event) => {
    if (event.target.matches && event.target.matches("[data-composer-input]")) autosize(event.target);
  });

  // The draft is cleared only once the server shows it back as a saved message, so a refused
  // or failed send never loses what the person typed.
  function clearAcceptedDraft() {
    const form = document.getElementById("composer");
    if (!form) return;
    const idInput = form.querySelector("[data-client-id-input]");
    if (!idInput || !idInput.value) return;
    if (document.querySelector(`.message-user[data-client-id="${CSS.escape(idInput.value)}"]`)) {
      const textarea = form.querySelector("[data-composer-input]");
      textarea.value = "";
      autosize(textarea);
      form.querySelectorAll("[data-attachment-list] > *").forEach((chip) => chip.remove());
      idInput.value = newClientId();
    }
  }

  // Keep the newest text in view while it streams, unless the person scrolled up to read.
  let stickToBottom = true;
  function messagesEl() {
    return document.getElementById("messages");
  }
  document.addEventListener(
    "scroll",
    (event) => {
      const el = messagesEl();
      if (event.target === el) {
        stickToBottom = el.scrollHeight - el.scrollTop - el.clientHeight < 80;
      }
    },
    true,
  );
  function followStream() {
    const el = messagesEl();
    if (el && stickToBottom) el.scrollTop = el.scrollHeight;
  }

  function setStatus(text) {
    const status = document.getElementById("connection-status");
    if (status) status.textContent = text;
  }

  document.body.addEventListener("htmx:wsAfterMessage", () => {
    clearAcceptedDraft();
    followStream();
    if (!replyInFlight()) showBusy("");
  });
  // A socket that (re)connects asks for everything after the last message this page shows,
  // so a turn started elsewhere while it was away (a laptop asleep) appears too.
  function lastMessageId() {
    const ids = Array.from(document.querySelectorAll("#messages > article[id^='message-']"), (el) =>
      parseInt(el.id.slice("message-".length), 10),
    ).filter((id) => !Number.isNaN(id));
    return ids.length ? Math.max(...ids) : null;
  }
  if (window.htmx) {
    htmx.createWebSocket = (url) => {
      const target = new URL(url, window.location.href);
      const after = lastMessageId();
      if (after !== null) target.searchParams.set("after", String(after));
      return new WebSocket(target.toString());
    };
  }

  document.body.addEventListener("htmx:wsOpen", () => setStatus(""));
  document.body.addEventListener("htmx:wsClose", (event) => {
    const code = event.detail && event.detail.event ? event.detail.event.code : 0;
    if (code === 4401) setStatus(words.signedOut);
    else if (code === 4404) setStatus(words.gone);
    else if (code === 4429) setStatus(words.tooManyTabs);
    else setStatus(words.reconnecting);
  });

  // Copy buttons: one per message and one per code block.
  async function copyText(button, text) {
    try {
      await navigator.clipboard.writeText(text);
      button.textContent = words.copied;
    } catch (error) {
      button.textContent = words.copyFailed;
    }
    setTimeout(() => {
      button.textContent = words.copy;
    }, 1500);
  }
  document.addEventListener("click", (event) => {
    const codeButton = event.target.closest("[data-copy-code]");
    if (codeButton) {
      const code = codeButton.closest(".code-block").querySelector("pre");
      copyText(codeButton, code ? code.innerText : "");
      return;
    }
    const messageButton = event.target.closest("[data-copy-message]");
    if (messageButton) {
      const body = messageButton.closest(".message").querySelector(".message-body");
      copyText(messageButton, body ? body.innerText : "");
    }
  });

  // Editing one of your messages: its text becomes a form; sending it makes a new branch.
  function showEditor(message, open) {
    const form = message && message.querySelector("[data-edit-form]");
    if (!form) return;
    message.classList.toggle("editing", open);
    form.hidden = !open;
    if (open) {
      ensureClientIds();
      const input = form.querySelector("[data-edit-input]");
      // The text is the message's own, read from the page rather than sent twice with it.
      input.value = message.querySelector(".user-text").textContent;
      input.focus();
      input.setSelectionRange(input.value.length, input.value.length);
    }
  }
  document.addEventListener("click", (event) => {
    const edit = event.target.closest("[data-edit-message]");
    if (edit) showEditor(edit.closest(".message"), true);
    const cancel = event.target.closest("[data-edit-cancel]");
    if (cancel) showEditor(cancel.closest(".message"), false);
  });

  // Phones: the conversation list slides over the page.
  function setSidebar(open) {
    const app = document.querySelector(".app");
    if (!app) return;
    app.classList.toggle("sidebar-open", open);
    document.querySelectorAll("[data-sidebar-toggle]").forEach((b) => b.setAttribute("aria-expanded", String(open)));
    if (open) {
      const search = document.getElementById("conversation-search");
      if (search) search.focus();
    }
  }
  document.addEventListener("click", (event) => {
    if (event.target.closest("[data-sidebar-toggle]")) {
      setSidebar(!document.querySelector(".app").classList.contains("sidebar-open"));
    } else if (event.target.closest("[data-sidebar-close]")) {
      setSidebar(false);
    }
  });
  document.addEventListener("keydown", (event) => {
    if (event.key === "Escape" && document.querySelector(".app.sidebar-open")) setSidebar(false);
  });

  // The model picker says what Azure keeps of the chosen deployment's conversations.
  document.addEventListener("change", (event) => {
    const select = event.target;
    if (!select.matches || !select.matches("select[aria-describedby='store-note']")) return;
    const note = document.querySelector("[data-store-note]");
    const option = select.selectedOptions[0];
    if (!note || !option) return;
    note.textContent = option.dataset.retention || "";
    note.dataset.storePolicy = option.dataset.storePolicy || "";
  });

  // The new-chat form is a plain POST: one click makes one conversation.
  document.addEventListener("submit", (event) => {
    if (event.target.id === "new-chat") {
      const button = event.target.querySelector("#send-button");
      if (button) {
        button.disabled = true;
        button.textContent = words.sending;
      }
    }
  });

  // Times are rendered in the server's zone; show them in the reader's own, in the page's language.
  const pageLanguage = document.documentElement.lang || undefined;
  function localTimes(root) {
    root.querySelectorAll("time[datetime]:not([data-local])").forEach((el) => {
      const when = new Date(el.getAttribute("datetime"));
      if (Number.isNaN(when.getTime())) return;
      el.textContent = when.toLocaleTimeString(pageLanguage, { hour: "2-digit", minute: "2-digit" });
      el.title = when.toLocaleString(pageLanguage);
      el.dataset.local = "1";
    });
  }
  document.body.addEventListener("htmx:afterSettle", (event) => localTimes(event.target));
  document.body.addEventListener("htmx:wsAfterMessage", () => localTimes(document));
  document.body.addEventListener("htmx:afterSettle", (event) => labelCopyButtons(event.target));
  document.body.addEventListener("htmx:wsAfterMessage", () => labelCopyButtons(document));

  document.addEventListener("DOMContentLoaded", () => {
    localTimes(document);
    labelCopyButtons(document);
    document.querySelectorAll("[data-language-submit]").forEach((button) => {
      button.hidden = true;
    });
    ensureClientIds();
    document.querySelectorAll("[data-composer-input]").forEach(autosize);
    followStream();
  });
  document.body.addEventListener("htmx:afterSettle", ensureClientIds);
})();
