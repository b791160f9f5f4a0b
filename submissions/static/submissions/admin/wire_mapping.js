// The bot page's wire mapping: a live preview of what the bot's last stored
// deliveries yield under the mapping being edited, and "Use this suggestion".
"use strict";
(() => {
  const section = document.getElementById("wire-mapping");
  const field = document.getElementById("id_wire_mapping");
  if (!section || !field) {
    return;
  }
  const table = document.getElementById("wire-preview");
  const error = document.getElementById("wire-preview-error");
  const csrf = document.querySelector("input[name=csrfmiddlewaretoken]");
  const cell = (text, tag = "td") => {
    const element = document.createElement(tag);
    element.textContent = text;
    return element;
  };
  const render = (rows) => {
    const body = table.tBodies[0];
    body.replaceChildren();
    for (const row of rows) {
      const tr = document.createElement("tr");
      tr.append(cell(String(row.event)), cell(row.status));
      if (row.error) {
        const note = cell("Not readable: " + row.error);
        note.colSpan = 5;
        note.className = "errornote";
        tr.append(note);
      } else {
        const shown = row.answers.map(([key, value]) => `${key} = ${typeof value === "string" ? value : JSON.stringify(value)}`);
        tr.append(
          cell(row.handler), cell(row.conversation || "-"), cell(row.user || "-"),
          cell(row.delivery || "-"),
          cell(`${row.answer_count}${shown.length ? ": " + shown.join("; ") : ""}`),
        );
      }
      body.append(tr);
    }
  };
  let timer = null;
  const preview = () => {
    const data = new FormData();
    data.append("mapping", field.value.trim() || "{}");
    fetch(section.dataset.previewUrl, {
      method: "POST",
      body: data,
      headers: { "X-CSRFToken": csrf ? csrf.value : "" },
      credentials: "same-origin",
    })
      .then((response) => response.json())
      .then((answer) => {
        error.hidden = !answer.detail;
        error.textContent = answer.detail || "";
        if (answer.rows) {
          render(answer.rows);
        }
      })
      .catch(() => {});
  };
  field.addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(preview, 300);
  });
  const use = document.getElementById("wire-use-suggestion");
  if (use) {
    use.addEventListener("click", () => {
      field.value = document.getElementById("wire-suggestion").value;
      preview();
      field.scrollIntoView({ block: "center" });
    });
  }
})();
