// Small progressive enhancements; every page works without them (the server guards double submits too).
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  // A form marked data-once disables its buttons after the first submit, so a double click sends once.
  for (const form of document.querySelectorAll("form[data-once]")) {
    form.addEventListener("submit", () => {
      // Disabled after the event: disabling now would drop the clicked button's formaction.
      setTimeout(() => {
        for (const button of form.querySelectorAll("button[type=submit]")) {
          button.disabled = true;
        }
      }, 0);
    });
  }

  // Ctrl+Enter (or Cmd+Enter) in a text area sends its form, so keyboard users need not tab to the button.
  for (const area of document.querySelectorAll("textarea")) {
    area.addEventListener("keydown", (event) => {
      if (event.key === "Enter" && (event.ctrlKey || event.metaKey) && area.form) {
        event.preventDefault();
        area.form.requestSubmit();
      }
    });
  }

  // "Select all" checkbox for the failed list.
  for (const master of document.querySelectorAll("input[data-select-all]")) {
    const name = master.getAttribute("data-select-all");
    master.addEventListener("change", () => {
      for (const box of document.querySelectorAll(`input[type=checkbox][name="${name}"]`)) {
        box.checked = master.checked;
      }
    });
  }
});
