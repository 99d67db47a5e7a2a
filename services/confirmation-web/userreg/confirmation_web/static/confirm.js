// userreg confirmation pages. A pending page confirms by itself as soon as a person actually sees
// it: a mail scanner that only fetches the HTML never runs this script, so it never confirms, and
// a prerendered (hidden) page waits until it is shown. The form's button stays as the fallback.
// The password-reset form never submits by itself; here its repeat field is checked as the user
// types (the server checks again, and says so on the page, without script).
(function () {
  "use strict";

  document.documentElement.classList.add("js");

  function lock(form) {
    var button = form.querySelector("button[type=submit]");
    if (button) {
      button.disabled = true;
      button.setAttribute("aria-busy", "true");
    }
  }

  // One submission per form, however often the button is pressed.
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (form.getAttribute("data-submitted") === "1") {
      event.preventDefault();
      return;
    }
    form.setAttribute("data-submitted", "1");
    // Disable only after the browser has collected the form's fields.
    window.setTimeout(function () { lock(form); }, 0);
  });

  // Coming back to this page through the history must not leave its buttons disabled.
  window.addEventListener("pageshow", function (event) {
    if (!event.persisted) return;
    var forms = document.querySelectorAll("form[data-submitted]");
    for (var i = 0; i < forms.length; i++) {
      forms[i].removeAttribute("data-submitted");
      var button = forms[i].querySelector("button[type=submit]");
      if (button) {
        button.disabled = false;
        button.removeAttribute("aria-busy");
      }
    }
  });

  // <input data-must-match="password" data-mismatch="message">: invalid until it repeats that field.
  function checkRepeats() {
    var repeats = document.querySelectorAll("input[data-must-match]");
    for (var i = 0; i < repeats.length; i++) {
      var repeat = repeats[i];
      var original = repeat.form && repeat.form.elements.namedItem(repeat.getAttribute("data-must-match"));
      if (!original) continue;
      var differs = repeat.value !== "" && repeat.value !== original.value;
      repeat.setCustomValidity(differs ? repeat.getAttribute("data-mismatch") || "" : "");
    }
  }

  document.addEventListener("input", function (event) {
    if (event.target.form && event.target.form.querySelector("input[data-must-match]")) checkRepeats();
  });

  function autoSubmit() {
    var form = document.querySelector("form[data-auto-submit]");
    if (!form || form.getAttribute("data-submitted") === "1") return;
    form.setAttribute("data-submitted", "1");
    lock(form);
    form.submit();
  }

  function whenVisible(callback) {
    if (document.visibilityState !== "hidden") {
      callback();
      return;
    }
    document.addEventListener("visibilitychange", function onChange() {
      if (document.visibilityState === "hidden") return;
      document.removeEventListener("visibilitychange", onChange);
      callback();
    });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", function () { whenVisible(autoSubmit); });
  } else {
    whenVisible(autoSubmit);
  }
})();
