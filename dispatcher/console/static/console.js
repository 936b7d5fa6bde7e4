// The console's progressive enhancement: local dates, live campaign progress, the message
// counter, placeholders from the file's header and uploads with a progress bar.
// No framework, no inline script (the CSP allows scripts from this origin only); every text
// from the server or a file is inserted with textContent, never as HTML, except the fragments
// the console itself rendered (escaped by Jinja2).
(function () {
  "use strict";
  var lang = document.documentElement.lang || "en";
  var words = {
    fr: { characters: "caractères", parts: "parties", part: "partie", saves: "économise",
          use: "Utiliser l’encodage intelligent", forcing: "imposent l’UCS-2 :",
          uploading: "Envoi du fichier…" },
    en: { characters: "characters", parts: "parts", part: "part", saves: "saves",
          use: "Use smart encoding", forcing: "force UCS-2:", uploading: "Uploading…" }
  }[lang === "fr" ? "fr" : "en"];

  function localizeTimes(root) {
    var times = root.querySelectorAll("time[datetime]");
    for (var i = 0; i < times.length; i++) {
      var when = new Date(times[i].getAttribute("datetime"));
      if (!isNaN(when)) {
        times[i].textContent = when.toLocaleString(lang, { dateStyle: "medium", timeStyle: "short" });
        times[i].title = times[i].getAttribute("datetime");
      }
    }
  }

  function live() {
    var section = document.getElementById("live");
    if (!section) { return; }
    var url = section.getAttribute("data-live-url");
    setInterval(function () {
      if (document.activeElement && section.contains(document.activeElement)) { return; }
      fetch(url, { credentials: "same-origin", headers: { "X-Console-Fetch": "1" } })
        .then(function (answer) { return answer.ok ? answer.text() : null; })
        .then(function (html) {
          if (html !== null) { section.innerHTML = html; localizeTimes(section); }
        })
        .catch(function () { /* the next tick tries again */ });
    }, 2000);
  }

  function debounce(fn, ms) {
    var timer = null;
    return function () { clearTimeout(timer); timer = setTimeout(fn, ms); };
  }

  function counter(form) {
    var text = document.getElementById("text");
    var provider = document.getElementById("provider");
    var out = document.getElementById("counter");
    var preview = document.getElementById("preview");
    var hint = document.getElementById("smart-hint");
    var smart = document.getElementById("smart_encoding");
    var update = debounce(function () {
      var url = text.getAttribute("data-info-url") + "?provider=" +
        encodeURIComponent(provider.value) + "&text=" + encodeURIComponent(text.value);
      fetch(url, { credentials: "same-origin", headers: { "X-Console-Fetch": "1" } })
        .then(function (answer) { return answer.ok ? answer.json() : null; })
        .then(function (info) { if (info) { show(info); } });
    }, 200);
    function show(info) {
      out.textContent = info.chars + " " + words.characters + " · " + info.encoding + " · " +
        info.parts + " " + (info.parts === 1 ? words.part : words.parts) +
        (info.limit ? " · " + info.limit : "");
      out.className = "counter" + (info.encoding === "UCS-2" ? " ucs2" : "");
      preview.textContent = "";
      var forcing = info.forcing.map(function (f) { return f.char; });
      if (forcing.length) {
        var label = document.createElement("span");
        label.className = "hint";
        label.textContent = info.forcing.map(function (f) { return f.char + " (" + f.name + ")"; })
          .join(", ") + " " + words.forcing + " ";
        preview.appendChild(label);
        var body = document.createElement("div");
        Array.from(text.value).forEach(function (ch) {
          if (forcing.indexOf(ch) >= 0) {
            var mark = document.createElement("mark");
            mark.textContent = ch;
            body.appendChild(mark);
          } else {
            body.appendChild(document.createTextNode(ch));
          }
        });
        preview.appendChild(body);
      }
      preview.hidden = !forcing.length;
      var better = info.smart.saved > 0 || info.smart.encoding !== info.encoding;
      if (info.smart.changes && better && !smart.checked) {
        hint.textContent = words.use + " (" + info.smart.encoding + ", " + info.smart.parts +
          " " + words.parts + ": " + words.saves + " " + info.smart.saved + ")";
        hint.hidden = false;
      } else {
        hint.hidden = true;
      }
    }
    hint.addEventListener("click", function () { smart.checked = true; hint.hidden = true; });
    text.addEventListener("input", update);
    provider.addEventListener("change", update);
    if (text.value) { update(); }
  }

  function placeholders() {
    var file = document.getElementById("file");
    var box = document.getElementById("placeholders");
    var text = document.getElementById("text");
    function offer(columns) {
      box.textContent = "";
      columns.forEach(function (name) {
        if (!name) { return; }
        var button = document.createElement("button");
        button.type = "button";
        button.className = "chip";
        button.textContent = "{" + name + "}";
        button.addEventListener("click", function () {
          var at = text.selectionStart || text.value.length;
          text.value = text.value.slice(0, at) + "{" + name + "}" + text.value.slice(at);
          text.dispatchEvent(new Event("input"));
          text.focus();
        });
        box.appendChild(button);
      });
    }
    file.addEventListener("change", function () {
      var chosen = file.files && file.files[0];
      if (!chosen || /\.parquet$/i.test(chosen.name)) { box.textContent = ""; return; }
      chosen.slice(0, 65536).text().then(function (head) {
        var line = head.replace(/^\uFEFF/, "").split(/\r?\n/)[0] || "";
        var best = ",";
        [";", "\t", "|"].forEach(function (d) {
          if (line.split(d).length > line.split(best).length) { best = d; }
        });
        offer(line.split(best).map(function (c) { return c.trim().replace(/^"|"$/g, ""); }));
      });
    });
    return offer;
  }

  function uploads(form, offer) {
    var progress = document.getElementById("upload-progress");
    var target = document.getElementById("estimate");
    form.addEventListener("submit", function (event) {
      var submitter = event.submitter;
      if (submitter && submitter.getAttribute("data-download")) { return; }
      if (!form.reportValidity()) { return; }
      event.preventDefault();
      var action = submitter && submitter.getAttribute("formaction") || form.getAttribute("action");
      var data = new FormData(form);
      var request = new XMLHttpRequest();
      request.open("POST", action);
      request.setRequestHeader("X-Console-Fetch", "1");
      progress.hidden = false;
      progress.value = 0;
      request.upload.addEventListener("progress", function (e) {
        if (e.lengthComputable) { progress.value = 100 * e.loaded / e.total; }
      });
      request.addEventListener("load", function () {
        progress.hidden = true;
        var type = request.getResponseHeader("Content-Type") || "";
        if (request.status === 200 && type.indexOf("application/json") === 0) {
          window.location.assign(JSON.parse(request.responseText).location);
          return;
        }
        if (type.indexOf("text/html") === 0 && request.status < 500) {
          target.innerHTML = request.responseText;
          var section = target.querySelector("[data-columns]");
          if (section && section.getAttribute("data-columns")) {
            offer(section.getAttribute("data-columns").split("\n"));
          }
          return;
        }
        target.textContent = "HTTP " + request.status;
      });
      request.addEventListener("error", function () { progress.hidden = true; });
      request.send(data);
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    localizeTimes(document);
    var zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
    var field = document.getElementById("timezone");
    if (field && zone) {
      field.value = zone;
      document.getElementById("tz-name").textContent = zone;
    }
    live();
    var form = document.getElementById("campaign-form");
    if (form) {
      counter(form);
      uploads(form, placeholders());
    }
  });
})();
