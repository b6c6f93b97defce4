// termdesk console: comfort only. Every page works without this file.
"use strict";

function syncGutter(textarea, gutter) {
  const lines = textarea.value.split("\n").length;
  const marks = new Map();
  for (const span of gutter.querySelectorAll("span[class]")) {
    marks.set(span.textContent, span.className);
  }
  const shown = gutter.querySelectorAll("span").length;
  if (shown !== lines) {
    gutter.textContent = "";
    for (let n = 1; n <= lines; n++) {
      const span = document.createElement("span");
      span.textContent = String(n);
      if (marks.has(String(n))) span.className = marks.get(String(n));
      gutter.appendChild(span);
    }
  }
  gutter.scrollTop = textarea.scrollTop;
}

function goToLine(textarea, line) {
  const lines = textarea.value.split("\n");
  let start = 0;
  for (let n = 1; n < line && n <= lines.length; n++) start += lines[n - 1].length + 1;
  textarea.focus();
  textarea.setSelectionRange(start, start + (lines[line - 1] || "").length);
  const lineHeight = parseFloat(getComputedStyle(textarea).lineHeight) || 19;
  textarea.scrollTop = Math.max(0, (line - 5) * lineHeight);
}

function setUpEditor() {
  const textarea = document.getElementById("source");
  const gutter = document.getElementById("gutter");
  if (!textarea || !gutter) return;
  textarea.addEventListener("input", () => syncGutter(textarea, gutter));
  textarea.addEventListener("scroll", () => { gutter.scrollTop = textarea.scrollTop; });
  const publish = document.getElementById("publish");
  const validated = document.getElementById("validated");
  const original = textarea.value;
  textarea.addEventListener("input", () => {
    // The stamp covers the validated text only: any edit needs a new Validate.
    if (publish && validated && validated.value) {
      publish.disabled = textarea.value !== original;
    }
  });
  for (const link of document.querySelectorAll("a.goto-line")) {
    link.addEventListener("click", (event) => {
      event.preventDefault();
      goToLine(textarea, Number(link.dataset.line));
    });
  }
}

function setUpCopy() {
  for (const button of document.querySelectorAll("button[data-copy]")) {
    button.hidden = false;
    button.addEventListener("click", async () => {
      const source = document.getElementById(button.dataset.copy);
      const status = document.getElementById(button.dataset.copy + "-status");
      try {
        await navigator.clipboard.writeText(source.textContent);
        if (status) status.textContent = "Copied.";
      } catch (error) {
        const range = document.createRange();
        range.selectNodeContents(source);
        const selection = window.getSelection();
        selection.removeAllRanges();
        selection.addRange(range);
        if (status) status.textContent = "Selected: press Ctrl+C to copy.";
      }
    });
  }
}

function setUpFileLoad() {
  const input = document.getElementById("package-file");
  const target = document.getElementById("package");
  if (!input || !target) return;
  input.addEventListener("change", async () => {
    if (input.files && input.files[0]) {
      target.value = await input.files[0].text();
      // The text area now holds the file: clear the choice so an edit of it is what is sent.
      input.value = "";
    }
  });
}

document.addEventListener("DOMContentLoaded", () => {
  setUpEditor();
  setUpCopy();
  setUpFileLoad();
});
