/* The debrief form, progressively enhanced: the page works without this file. It shows only the fields the
   chosen plan uses and refreshes the preview as the rep types. A file, not inline: the CSP allows 'self' only. */
(function () {
  var form = document.getElementById("debrief-form");
  var box = document.getElementById("preview");
  var button = document.getElementById("preview-button");
  var timer = null;
  function checked(name) { var c = form.querySelector("input[name=" + name + "]:checked"); return c ? c.value : ""; }
  function sync() {
    var plan = checked("plan"), won = checked("outcome") === "won";
    document.getElementById("next-step").hidden = won;
    document.getElementById("why").hidden = won;
    form.querySelectorAll("[data-plans]").forEach(function (el) {
      el.hidden = el.getAttribute("data-plans").split(" ").indexOf(plan) < 0;
    });
  }
  function refresh() {
    clearTimeout(timer);
    timer = setTimeout(function () {
      fetch(form.getAttribute("data-preview-url"), {method: "POST", body: new FormData(form), credentials: "same-origin"})
        .then(function (r) { return r.ok ? r.text() : null; })
        .then(function (html) { if (html !== null) { box.innerHTML = html; } })
        .catch(function () { button.hidden = false; });
    }, 350);
  }
  form.addEventListener("change", function () { sync(); refresh(); });
  form.addEventListener("submit", function (e) {
    if (e.submitter && e.submitter.name === "submit") { setTimeout(function () { e.submitter.disabled = true; }, 0); }
  });
  form.addEventListener("input", function (e) { if (e.target.type !== "radio" && e.target.type !== "checkbox") { refresh(); } });
  button.hidden = true;
  sync();
  var errors = document.getElementById("form-errors");
  if (errors) { errors.focus(); }
})();
