// The template editor's live preview: as one types, the form is posted to the preview endpoint
// (server-side, the same sandboxed renderer as the services) and the sandboxed frame shows the
// answer. Without this script the Preview button posts the form and the page comes back rendered.
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  const form = document.getElementById("template-form");
  const frame = document.getElementById("preview-frame");
  if (!form || !frame || !window.fetch) return;
  const error = document.getElementById("preview-error");
  const subject = document.getElementById("preview-subject");
  const text = document.getElementById("preview-text");
  const state = document.getElementById("preview-state");
  let timer = null;
  let latest = 0;

  async function refresh() {
    const asked = ++latest;
    state.textContent = "updating…";
    try {
      const response = await fetch(form.dataset.preview, {
        method: "POST", body: new FormData(form), credentials: "same-origin",
        headers: { "Accept": "application/json" },
      });
      if (asked !== latest) return;
      if (!response.ok) throw new Error("HTTP " + response.status);
      const preview = await response.json();
      error.hidden = !preview.error;
      error.textContent = preview.error || "";
      if (!preview.error) {
        frame.srcdoc = preview.html || "";
        if (subject) subject.textContent = preview.subject || "";
        if (text) text.textContent = preview.text || "";
      }
      state.textContent = "with sample data";
    } catch (problem) {
      if (asked === latest) state.textContent = "not updated (" + problem.message + "): use the Preview button";
    }
  }

  form.addEventListener("input", (event) => {
    if (event.target.name === "to") return;
    clearTimeout(timer);
    timer = setTimeout(refresh, 350);
  });
});
