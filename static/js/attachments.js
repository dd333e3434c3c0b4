// Files in the composer: the Attach button, pasted images and dropped files are uploaded at
// once (POST /attachments/); each comes back as a chip holding a hidden `attachments` input,
// which ws-send (or the plain form post) sends with the message. Without JavaScript the file
// input itself posts the files with the form.
(function () {
  "use strict";

  function composer() {
    return document.getElementById("composer");
  }
  function chipList(form) {
    return form.querySelector("[data-attachment-list]");
  }

  // A message may be files alone: the text is required only while no file is attached.
  function syncRequired(form) {
    const textarea = form.querySelector("[data-composer-input]");
    if (textarea) textarea.required = !form.querySelector("input[name='attachments']");
  }

  async function upload(form, files) {
    const list = chipList(form);
    if (!files.length || !list) return;
    list.querySelectorAll(".attachment-error").forEach((el) => el.remove());
    const body = new FormData();
    files.forEach((file) => body.append("file", file, file.name || "pasted-image.png"));
    const pending = document.createElement("li");
    pending.className = "attachment-chip attachment-pending muted small";
    pending.textContent = files.length === 1 ? `Uploading ${files[0].name || "image"}…` : `Uploading ${files.length} files…`;
    list.appendChild(pending);
    let html;
    try {
      const response = await fetch(form.dataset.uploadUrl, {
        method: "POST",
        body,
        credentials: "same-origin",
        headers: { "X-CSRFToken": form.querySelector("[name='csrfmiddlewaretoken']").value },
      });
      html = await response.text();
      if (!(response.headers.get("content-type") || "").startsWith("text/html")) {
        html = `<li class="attachment-error alert alert-error" role="alert">The files could not be uploaded (${response.status}). Try again.</li>`;
      }
    } catch (error) {
      html = '<li class="attachment-error alert alert-error" role="alert">The files could not be uploaded: the server did not answer. Try again.</li>';
    }
    pending.remove();
    list.insertAdjacentHTML("beforeend", html);
    if (window.htmx) htmx.process(list);
    syncRequired(form);
  }

  document.addEventListener("click", (event) => {
    const button = event.target.closest("[data-attach-button]");
    if (!button) return;
    const input = button.form && button.form.querySelector("[data-attach-input]");
    if (input) input.click();
  });

  document.addEventListener("change", (event) => {
    const input = event.target;
    if (!input.matches || !input.matches("[data-attach-input]")) return;
    const files = Array.from(input.files);
    // Emptied at once: ws-send would otherwise try to put the files in its JSON frame.
    input.value = "";
    upload(input.form, files);
  });

  document.addEventListener("paste", (event) => {
    const target = event.target;
    if (!target.matches || !target.matches("[data-composer-input]") || !event.clipboardData) return;
    const files = Array.from(event.clipboardData.files);
    if (!files.length) return;
    event.preventDefault();
    upload(target.form, files);
  });

  function dropZone(event) {
    const form = composer();
    return form && event.target.closest && event.target.closest(".composer-row") ? form : null;
  }
  function carriesFiles(event) {
    return event.dataTransfer && Array.from(event.dataTransfer.types).includes("Files");
  }
  document.addEventListener("dragover", (event) => {
    const form = dropZone(event);
    if (!form || !carriesFiles(event)) return;
    event.preventDefault();
    form.closest(".composer-row").classList.add("drop-target");
  });
  document.addEventListener("dragleave", (event) => {
    const form = dropZone(event);
    if (form && !form.closest(".composer-row").contains(event.relatedTarget)) {
      form.closest(".composer-row").classList.remove("drop-target");
    }
  });
  document.addEventListener("drop", (event) => {
    const form = dropZone(event);
    if (!form || !carriesFiles(event)) return;
    event.preventDefault();
    form.closest(".composer-row").classList.remove("drop-target");
    upload(form, Array.from(event.dataTransfer.files));
  });

  // A chip removed (its draft deleted on the server), or the message sent: the chips go.
  document.body.addEventListener("htmx:afterSwap", () => {
    const form = composer();
    if (form) syncRequired(form);
  });
  document.body.addEventListener("htmx:wsAfterMessage", () => {
    const form = composer();
    if (form) syncRequired(form);
  });

  document.addEventListener("DOMContentLoaded", () => {
    const form = composer();
    if (!form) return;
    form.querySelectorAll("[data-attach-input]").forEach((input) => (input.hidden = true));
    form.querySelectorAll("[data-attach-button]").forEach((button) => (button.hidden = false));
    syncRequired(form);
  });
})();
