/* The supervisor's console: plain JavaScript, no build step, nothing fetched but this server's API.
 * Every API call sends the Mini App sign-in (Telegram.WebApp.initData, or the #tgWebAppData fragment)
 * in the Authorization header; nothing personal goes into a URL. */
(function () {
  "use strict";

  var state = { initData: "", me: null, msgs: {}, view: "map", urls: [] };

  // ---- sign-in data ------------------------------------------------------------------------------------
  function readInitData() {
    var tg = window.Telegram && window.Telegram.WebApp;
    if (tg && tg.initData) return tg.initData;
    var fragment = new URLSearchParams(window.location.hash.replace(/^#/, ""));
    var data = fragment.get("tgWebAppData") || "";
    if (data && window.history && window.history.replaceState) {  // not left in the address bar
      window.history.replaceState(null, "", window.location.pathname);
    }
    return data;
  }

  // ---- small helpers -------------------------------------------------------------------------------------
  function t(key, params) {
    var text = state.msgs[key] || key;
    if (params) {
      Object.keys(params).forEach(function (name) { text = text.split("{" + name + "}").join(String(params[name])); });
    }
    return text;
  }

  function h(tag, attrs) {
    var el = document.createElement(tag);
    if (attrs) {
      Object.keys(attrs).forEach(function (name) {
        var value = attrs[name];
        if (value === null || value === undefined || value === false) return;
        if (name === "text") el.textContent = value;
        else if (name === "class") el.className = value;
        else if (name.slice(0, 2) === "on") el.addEventListener(name.slice(2), value);
        else el.setAttribute(name, value === true ? "" : value);
      });
    }
    for (var i = 2; i < arguments.length; i++) {
      var child = arguments[i];
      if (child === null || child === undefined || child === false) continue;
      if (Array.isArray(child)) child.forEach(function (c) { if (c) el.appendChild(c); });
      else el.appendChild(typeof child === "string" ? document.createTextNode(child) : child);
    }
    return el;
  }

  var SVG = "http://www.w3.org/2000/svg";
  function s(tag, attrs) {
    var el = document.createElementNS(SVG, tag);
    Object.keys(attrs || {}).forEach(function (name) {
      if (name === "text") el.textContent = attrs[name];
      else if (name.slice(0, 2) === "on") el.addEventListener(name.slice(2), attrs[name]);
      else el.setAttribute(name, attrs[name]);
    });
    return el;
  }

  function main() { return document.getElementById("main"); }

  function show() {
    var target = main();
    state.urls.forEach(function (url) { URL.revokeObjectURL(url); });
    state.urls = [];
    target.textContent = "";
    for (var i = 0; i < arguments.length; i++) if (arguments[i]) target.appendChild(arguments[i]);
    window.scrollTo(0, 0);
  }

  var toastTimer = null;
  function toast(text, bad) {
    var box = document.getElementById("toast");
    box.textContent = text;
    box.className = "toast" + (bad ? " bad" : "");
    box.hidden = false;
    clearTimeout(toastTimer);
    toastTimer = setTimeout(function () { box.hidden = true; }, 4000);
  }

  function ApiError(status, body) { this.status = status; this.body = body || {}; }

  function request(method, path, body) {
    var options = { method: method, headers: { "Authorization": "tma " + state.initData }, cache: "no-store",
                    credentials: "same-origin", referrerPolicy: "no-referrer" };
    if (body !== undefined) {
      options.headers["Content-Type"] = "application/json";
      options.body = JSON.stringify(body);
    }
    return fetch(path, options).catch(function () {
      throw new ApiError(0, { message: t("web.error.network") });
    }).then(function (response) {
      if (response.ok) return response;
      return response.json().catch(function () { return {}; }).then(function (data) {
        throw new ApiError(response.status, data);
      });
    });
  }
  function getJson(path) { return request("GET", path).then(function (r) { return r.json(); }); }
  function postJson(path, body) { return request("POST", path, body || {}).then(function (r) { return r.json(); }); }
  function blobUrl(path) {
    return request("GET", path).then(function (r) { return r.blob(); }).then(function (blob) {
      var url = URL.createObjectURL(blob);
      state.urls.push(url);
      return url;
    });
  }
  function download(path, name) {
    return request("GET", path).then(function (r) { return r.blob(); }).then(function (blob) {
      var url = URL.createObjectURL(blob);
      var link = h("a", { href: url, download: name });
      document.body.appendChild(link);
      link.click();
      setTimeout(function () { URL.revokeObjectURL(url); link.remove(); }, 30000);
    });
  }

  function failed(error) {
    if (!(error instanceof ApiError)) { toast(String(error), true); return; }
    if (error.status === 401) fatal(error.body.message || t("web.error.sign_in"));
    else if (error.status === 403) fatal(error.body.message || t("web.error.refused"));
    else if (error.status === 429) toast(t("web.error.rate"), true);
    else if (error.status === 404) toast(t("web.error.not_found"), true);
    else toast(error.body.message || t("web.error.network"), true);
  }

  function fatal(text) {
    document.getElementById("tabs").hidden = true;
    show(h("p", { class: "fatal", "data-testid": "fatal", text: text }));
  }

  function section(title, body, testid) {
    return h("section", { class: "card", "data-testid": testid }, h("h2", { text: title }), body);
  }

  function table(columns, rows, onRow) {
    var head = h("tr", null, columns.map(function (c) { return h("th", { text: c[1] }); }));
    var body = rows.map(function (row) {
      var tr = h("tr", { class: onRow ? "link" : null, onclick: onRow ? function () { onRow(row); } : null },
        columns.map(function (c) {
          var value = typeof c[0] === "function" ? c[0](row) : row[c[0]];
          return h("td", { "data-label": c[1] }, value instanceof Node ? value : String(value === null ||
            value === undefined ? "–" : value));
        }));
      return tr;
    });
    return h("table", { class: "grid" }, h("thead", null, head), h("tbody", null, body));
  }

  function empty(text) { return h("p", { class: "muted", text: text }); }

  // ---- navigation ----------------------------------------------------------------------------------------
  var VIEWS = {};
  function go(view, arg) {
    state.view = view;
    document.querySelectorAll("#tabs button").forEach(function (b) {
      b.classList.toggle("on", b.getAttribute("data-view") === view.split(":")[0]);
    });
    show(h("p", { class: "muted", text: t("web.loading") }));
    Promise.resolve(VIEWS[view](arg)).catch(failed);
  }

  // ---- the map -------------------------------------------------------------------------------------------
  var COLORS = { due: "#1f6feb", overdue: "#d1242f", done: "#1a7f37", visit: "#8250df", collector: "#bc4c00",
                 incident: "#d1242f" };

  function mapPoints(data) {
    var points = [];
    data.cases.forEach(function (p) { points.push({ p: p, layer: "cases" }); });
    data.visits.forEach(function (p) { points.push({ p: p, layer: "visits" }); });
    data.collectors.forEach(function (p) { points.push({ p: p, layer: "collectors" }); });
    data.incidents.forEach(function (i) { i.trail.forEach(function (p) { points.push({ p: p, layer: "incidents" }); }); });
    return points;
  }

  // Web Mercator pixel coordinates at zoom z (tiles of 256 px)
  function mercator(lat, lon, z) {
    var size = 256 * Math.pow(2, z), rad = lat * Math.PI / 180;
    return [(lon + 180) / 360 * size, (1 - Math.log(Math.tan(rad) + 1 / Math.cos(rad)) / Math.PI) / 2 * size];
  }

  function projection(points, width, height, tiles) {
    var lats = points.map(function (x) { return x.p.lat; }), lons = points.map(function (x) { return x.p.lon; });
    var minLat = Math.min.apply(null, lats), maxLat = Math.max.apply(null, lats);
    var minLon = Math.min.apply(null, lons), maxLon = Math.max.apply(null, lons);
    var pad = 40;
    if (tiles) {
      var z = 17;
      for (; z > 3; z--) {
        var a = mercator(maxLat, minLon, z), b = mercator(minLat, maxLon, z);
        if (b[0] - a[0] <= width - 2 * pad && b[1] - a[1] <= height - 2 * pad) break;
      }
      var c = mercator((minLat + maxLat) / 2, (minLon + maxLon) / 2, z);
      var left = c[0] - width / 2, top = c[1] - height / 2;
      return { z: z, left: left, top: top, at: function (lat, lon) {
        var m = mercator(lat, lon, z); return [m[0] - left, m[1] - top]; } };
    }
    // no tiles: an equirectangular plot, east-west shrunk by the cosine of the middle latitude
    var k = Math.cos((minLat + maxLat) / 2 * Math.PI / 180);
    var spanX = Math.max((maxLon - minLon) * k, 0.002), spanY = Math.max(maxLat - minLat, 0.002);
    var scale = Math.min((width - 2 * pad) / spanX, (height - 2 * pad) / spanY);
    var midX = (minLon + maxLon) / 2, midY = (minLat + maxLat) / 2;
    return { at: function (lat, lon) {
      return [width / 2 + (lon - midX) * k * scale, height / 2 - (lat - midY) * scale]; }, scale: scale };
  }

  function tileLayer(template, proj, width, height) {
    var layer = h("div", { class: "tiles" });
    var subdomains = /\d\{s\}/.test(template) ? "1234" : "abc";
    var first = [Math.floor(proj.left / 256), Math.floor(proj.top / 256)];
    var last = [Math.floor((proj.left + width) / 256), Math.floor((proj.top + height) / 256)];
    var count = Math.pow(2, proj.z);
    for (var x = first[0]; x <= last[0]; x++) {
      for (var y = first[1]; y <= last[1]; y++) {
        if (y < 0 || y >= count) continue;
        var wrapped = ((x % count) + count) % count;
        var url = template.replace("{z}", proj.z).replace("{x}", wrapped).replace("{y}", y)
          .replace("{s}", subdomains[Math.abs(x + y) % subdomains.length]);
        var img = h("img", { src: url, alt: "", class: "tile", referrerpolicy: "no-referrer" });
        img.style.left = (x * 256 - proj.left) + "px";
        img.style.top = (y * 256 - proj.top) + "px";
        layer.appendChild(img);
      }
    }
    return layer;
  }

  VIEWS.map = function () {
    return getJson("/api/map").then(function (data) {
      var points = mapPoints(data);
      var legend = h("div", { class: "legend" });
      var frame = h("div", { class: "map", "data-testid": "map" });
      var layers = { cases: true, visits: true, collectors: true, incidents: true };
      var tiles = state.me.map.tiles;
      function draw() {
        frame.textContent = "";
        var width = frame.clientWidth || 360, height = frame.clientHeight || 420;
        if (!points.length) { frame.appendChild(empty(t("web.map.empty"))); return; }
        var proj = projection(points, width, height, tiles);
        if (tiles) frame.appendChild(tileLayer(tiles, proj, width, height));
        var svg = s("svg", { width: width, height: height, viewBox: "0 0 " + width + " " + height, class: "overlay" });
        function label(xy, dy, text, css) {  // on the left of a point near the right edge
          var left = xy[0] > width - 90;
          return s("text", { x: xy[0] + (left ? -9 : 9), y: xy[1] + dy, class: css, text: text,
                             "text-anchor": left ? "end" : "start" });
        }
        if (!tiles) {
          svg.appendChild(s("rect", { x: 0, y: 0, width: width, height: height, class: "plain" }));
          for (var g = 1; g < 6; g++) {
            svg.appendChild(s("line", { x1: width * g / 6, y1: 0, x2: width * g / 6, y2: height, class: "graticule" }));
            svg.appendChild(s("line", { x1: 0, y1: height * g / 6, x2: width, y2: height * g / 6, class: "graticule" }));
          }
        }
        if (layers.cases) data.cases.forEach(function (p) {
          var xy = proj.at(p.lat, p.lon);
          var dot = s("circle", { cx: xy[0], cy: xy[1], r: 7, fill: COLORS[p.kind] || COLORS.due, class: "marker",
                                  "data-kind": "case", "data-ref": p.ref, onclick: function () { go("case", p.ref); } });
          dot.appendChild(s("title", { text: p.label + (p.at ? " · " + p.at : "") }));
          svg.appendChild(dot);
          svg.appendChild(label(xy, 4, p.label, "label"));
        });
        if (layers.visits) data.visits.forEach(function (p) {
          var xy = proj.at(p.lat, p.lon);
          var box = s("rect", { x: xy[0] - 5, y: xy[1] - 5, width: 10, height: 10, fill: COLORS.visit,
                                class: "marker", "data-kind": "visit" });
          box.appendChild(s("title", { text: p.label + " · " + p.at }));
          svg.appendChild(box);
        });
        if (layers.collectors) data.collectors.forEach(function (p) {
          var xy = proj.at(p.lat, p.lon);
          var pin = s("circle", { cx: xy[0], cy: xy[1], r: 6, fill: "#fff", stroke: COLORS.collector,
                                  "stroke-width": 4, class: "marker", "data-kind": "collector" });
          pin.appendChild(s("title", { text: p.label + (p.at ? " · " + p.at : "") }));
          svg.appendChild(pin);
          svg.appendChild(label(xy, -6, p.label, "label person"));
        });
        if (layers.incidents) data.incidents.forEach(function (i) {
          if (!i.trail.length) return;
          var line = i.trail.map(function (p) { return proj.at(p.lat, p.lon).join(","); }).join(" ");
          svg.appendChild(s("polyline", { points: line, class: "trail" }));
          var end = proj.at(i.trail[i.trail.length - 1].lat, i.trail[i.trail.length - 1].lon);
          var mark = s("path", { d: "M" + end[0] + "," + (end[1] - 13) + " l11,20 l-22,0 z", fill: COLORS.incident,
                                 class: "marker alarm", "data-kind": "incident", "data-ref": i.id,
                                 onclick: function () { go("incident", i.id); } });
          mark.appendChild(s("title", { text: "🆘 " + i.collector + " · " + i.reason + " · " + i.raised }));
          svg.appendChild(mark);
        });
        frame.appendChild(svg);
      }
      [["cases", COLORS.due], ["visits", COLORS.visit], ["collectors", COLORS.collector],
       ["incidents", COLORS.incident]].forEach(function (layer) {
        var box = h("input", { type: "checkbox", checked: true, onchange: function () {
          layers[layer[0]] = box.checked; draw(); } });
        legend.appendChild(h("label", { class: "chip" }, box, h("i", { class: "swatch " + layer[0] }),
          t("web.map." + layer[0]) + " (" + (layer[0] === "incidents" ? data.incidents.length :
            data[layer[0]].length) + ")"));
      });
      var list = data.incidents.map(function (i) {
        return h("li", null, h("button", { type: "button", class: "linkish", onclick: function () { go("incident", i.id); },
          text: "🆘 " + i.collector + " · " + i.reason + " · " + i.raised }));
      });
      show(section(t("web.tab.map") + (data.team ? " · " + data.team : ""),
        h("div", null, legend, tiles ? null : h("p", { class: "muted small", text: t("web.map.plain") }), frame,
          list.length ? h("ul", { class: "plain-list", "data-testid": "map-incidents" }, list) : null), "map-page"));
      draw();
      window.onresize = function () { if (state.view === "map") draw(); };
    });
  };

  // ---- cases ---------------------------------------------------------------------------------------------
  var search = { text: "", status: "", collector_id: "", bank: "", overdue: false, promise_due: false, offset: 0 };
  var PAGE = 20;

  function select(name, first, options, value) {
    var el = h("select", { name: name, "aria-label": first },
      h("option", { value: "", text: first }),
      options.map(function (o) { return h("option", { value: o[0], text: o[1], selected: String(o[0]) === String(value) }); }));
    return el;
  }

  VIEWS.cases = function () {
    return getJson("/api/cases/filters").then(function (filters) {
      var text = h("input", { type: "search", name: "text", placeholder: t("web.cases.search"), value: search.text,
                              "aria-label": t("web.cases.search"), maxlength: 50 });
      var status = select("status", t("web.cases.any_status"),
        filters.statuses.map(function (x) { return [x.value, x.label]; }), search.status);
      var collector = select("collector", t("web.cases.any_collector"),
        filters.collectors.map(function (x) { return [x.id, x.name]; }), search.collector_id);
      var bank = select("bank", t("web.cases.any_bank"), filters.banks.map(function (b) { return [b, b]; }), search.bank);
      var overdue = h("input", { type: "checkbox", name: "overdue", checked: search.overdue });
      var promise = h("input", { type: "checkbox", name: "promise_due", checked: search.promise_due });
      var results = h("div", { "data-testid": "results" });
      function run(offset) {
        search = { text: text.value, status: status.value, collector_id: collector.value, bank: bank.value,
                   overdue: overdue.checked, promise_due: promise.checked, offset: offset };
        var body = { text: search.text, status: search.status || null, bank: search.bank || null,
                     collector_id: search.collector_id || null, overdue: search.overdue,
                     promise_due: search.promise_due, offset: offset, limit: PAGE };
        return postJson("/api/cases/search", body).then(function (page) {
          results.textContent = "";
          results.appendChild(h("p", { class: "muted", text: t("web.cases.total", { total: page.total }) }));
          if (!page.items.length) { results.appendChild(empty(t("web.cases.none"))); return; }
          results.appendChild(table([
            ["case_no", t("web.col.case_no")], ["debtor", t("web.col.debtor")], ["bank", t("web.col.bank")],
            ["amount", t("web.col.amount")], [function (r) { return h("span", { class: "badge " + r.status,
              text: r.status_label }); }, t("web.col.status")],
            ["collector", t("web.col.collector")],
            [function (r) { return (r.due || "–") + (r.overdue ? " ⏰" : "") + (r.promise_due ? " 🤝 " +
              r.promise_due : ""); }, t("web.col.due")]
          ], page.items, function (row) { go("case", row.id); }));
          var pager = h("div", { class: "pager" });
          if (offset > 0) pager.appendChild(h("button", { type: "button", text: t("web.cases.prev"),
            onclick: function () { run(Math.max(0, offset - PAGE)).catch(failed); } }));
          if (offset + PAGE < page.total) pager.appendChild(h("button", { type: "button", text: t("web.cases.next"),
            onclick: function () { run(offset + PAGE).catch(failed); } }));
          results.appendChild(pager);
        });
      }
      var form = h("form", { class: "filters", onsubmit: function (e) { e.preventDefault(); run(0).catch(failed); } },
        h("div", { class: "row" }, text, h("button", { type: "submit", class: "primary", text: t("web.cases.search_button") })),
        h("div", { class: "row wrap" }, status, collector, bank,
          h("label", { class: "chip" }, overdue, t("web.cases.overdue")),
          h("label", { class: "chip" }, promise, t("web.cases.promise_due"))));
      show(section(t("web.tab.cases"), h("div", null, form, results), "cases-page"));
      return run(search.offset);
    });
  };

  function evidenceBlock(item) {
    if (!item.stored) return h("span", { class: "muted", text: item.label + ": " + t("web.case.file_missing") });
    var holder = h("figure", { class: "evidence", "data-kind": item.kind },
      h("figcaption", { text: item.label + " · " + (item.at || "") + (item.sha256 ? " · " + item.sha256.slice(0, 12) : "") }));
    if (item.kind === "photo") {
      var img = h("img", { alt: item.label, class: "thumb", "data-testid": "photo" });
      blobUrl("/api/evidence/" + item.id + "?size=thumb").then(function (url) { img.src = url; }).catch(failed);
      holder.insertBefore(h("button", { type: "button", class: "thumb-button", title: t("web.case.open_photo"),
        onclick: function () { openPhoto(item.id); } }, img), holder.firstChild);
    } else {
      var audio = h("audio", { controls: true, preload: "none", "data-testid": "audio" });
      blobUrl("/api/evidence/" + item.id).then(function (url) { audio.src = url; }).catch(failed);
      holder.insertBefore(audio, holder.firstChild);
    }
    return holder;
  }

  function openPhoto(id) {
    var viewer = document.getElementById("viewer"), img = document.getElementById("viewer-img");
    blobUrl("/api/evidence/" + id).then(function (url) {
      img.src = url;
      viewer.hidden = false;
      viewer.onclick = function () { viewer.hidden = true; img.removeAttribute("src"); };
    }).catch(failed);
  }

  function reasonForm(label, onSubmit, extra) {
    var reason = h("input", { type: "text", name: "reason", placeholder: t("web.case.reason"), maxlength: 500,
                              required: true, "aria-label": t("web.case.reason") });
    return h("form", { class: "row wrap action", onsubmit: function (e) {
      e.preventDefault(); onSubmit(reason.value, e.submitter);
    } }, extra || null, reason, h("button", { type: "submit", text: label }));
  }

  VIEWS["case"] = function (id) {
    return getJson("/api/cases/" + id).then(function (c) {
      var head = h("div", { class: "facts" },
        h("p", null, h("strong", { text: c.case_no + " · " + c.bank }), " ",
          h("span", { class: "badge " + c.status, "data-testid": "case-status", text: c.status_label })),
        h("p", { text: c.debtor + " · " + (c.id_number || "–") + " · " + c.phone }),
        h("p", { text: c.address }),
        h("p", { text: c.amount + (c.overdue_days !== null ? " · " + c.overdue_days + "d" : "") }),
        h("p", { text: t("web.col.collector") + ": " + (c.assignee || "–") + (c.team ? " (" + c.team + ")" : "") +
          (c.visit_due ? " · " + t("web.col.due") + ": " + c.visit_due : "") }),
        c.status_reason ? h("p", { class: "muted", text: c.status_reason + " — " + (c.status_changed_by || "") }) : null);
      var actions = h("div", { class: "actions" });
      function done() { toast(t("web.case.done")); go("case", id); }
      if (c.actions.reassign.length) {
        var to = select("collector_id", t("web.case.reassign_to"),
          c.actions.reassign.map(function (x) { return [x.id, x.name]; }), "");
        actions.appendChild(reasonForm(t("web.case.reassign"), function (reason) {
          if (!to.value) { to.focus(); return; }
          postJson("/api/cases/" + id + "/reassign", { collector_id: Number(to.value), reason: reason })
            .then(done).catch(failed);
        }, to));
      }
      var changes = ["hold", "close", "reopen"].filter(function (k) { return c.actions[k]; });
      changes.forEach(function (change) {
        actions.appendChild(reasonForm(t("web.case." + change), function (reason) {
          postJson("/api/cases/" + id + "/status", { change: change, reason: reason }).then(done).catch(failed);
        }));
      });
      if (c.actions.bundle) {
        actions.appendChild(h("button", { type: "button", "data-testid": "bundle", text: t("web.case.evidence_bundle"),
          onclick: function () { download("/api/cases/" + id + "/bundle", "evidence-" + id + ".zip").catch(failed); } }));
      }
      var visits = c.visits.map(function (v) {
        return h("article", { class: "visit", "data-testid": "visit" },
          h("p", null, h("strong", { text: (v.code_label || "–") + " · " + v.collector }), " ",
            h("span", { class: "badge " + v.status, text: v.status_label })),
          h("p", { class: "muted", text: [v.checkin ? "📍 " + v.checkin + (v.distance_m !== null ? " (" +
            Math.round(v.distance_m) + " m)" + (v.flagged ? " ⚠" : "") : "") : null, v.filed ? "✔ " + v.filed : null]
            .filter(Boolean).join(" · ") }),
          v.comment ? h("p", { class: "muted", text: "↩ " + v.comment }) : null,
          h("div", { class: "files" }, v.evidence.map(evidenceBlock)));
      });
      show(
        h("p", null, h("button", { type: "button", class: "linkish", text: "← " + t("web.case.back"),
          onclick: function () { go("cases"); } })),
        section(c.case_no, head, "case-page"),
        actions.childNodes.length ? section(t("web.case.actions"), actions, "case-actions") : null,
        section(t("web.case.visits"), visits.length ? h("div", null, visits) : empty(t("web.case.none")), "case-visits"),
        section(t("web.case.promises"), c.promises.length ? table([["amount", t("web.col.amount")],
          ["due", t("web.col.due_on")], ["status_label", t("web.col.status")], ["paid", t("web.col.paid")]],
          c.promises) : empty(t("web.case.none"))),
        section(t("web.case.payments"), c.payments.length ? table([["paid_on", t("web.col.paid_on")],
          ["amount", t("web.col.amount")], ["channel", t("web.col.channel")]], c.payments) : empty(t("web.case.none"))),
        section(t("web.case.assignments"), table([["collector", t("web.col.collector")], ["at", t("web.col.when")],
          ["by", t("web.col.by")], ["ended", t("web.col.ended")], ["reason", t("web.case.reason")]], c.assignments)),
        section(t("web.case.timeline"), h("ol", { class: "timeline" }, c.timeline.map(function (line) {
          return h("li", { text: line }); })), "case-timeline"));
    });
  };

  // ---- reviews -------------------------------------------------------------------------------------------
  VIEWS.reviews = function () {
    return getJson("/api/reviews").then(function (queue) {
      var list = h("div", { "data-testid": "review-queue" });
      function item(w) {
        var details = h("div", { class: "details", hidden: true });
        var box = h("article", { class: "review", "data-testid": "review", "data-visit": w.visit_id },
          h("p", null, h("strong", { text: w.case_no + " · " + w.collector }), " ",
            h("span", { class: "muted", text: w.filed }), w.late ? h("span", { class: "badge late",
              text: "⏰ " + t("web.reviews.late") }) : null));
        var buttons = h("div", { class: "row wrap" });
        if (queue.may_review) {
          buttons.appendChild(h("button", { type: "button", text: t("web.reviews.details"), onclick: function () {
            if (!details.hidden) { details.hidden = true; return; }
            getJson("/api/reviews/" + w.visit_id).then(function (d) {
              details.textContent = "";
              details.appendChild(h("pre", { class: "summary", text: d.summary }));
              details.appendChild(h("div", { class: "files" }, d.evidence.map(evidenceBlock)));
              details.appendChild(h("button", { type: "button", class: "linkish", text: "→ " + t("web.tab.cases"),
                onclick: function () { go("case", d.case_id); } }));
              details.hidden = false;
            }).catch(failed);
          } }));
          buttons.appendChild(h("button", { type: "button", class: "primary", "data-testid": "approve",
            text: t("web.reviews.approve"), onclick: function (e) {
              e.target.disabled = true;
              postJson("/api/reviews/" + w.visit_id + "/approve").then(function () {
                box.remove(); toast(t("web.reviews.approved"));
                if (!list.querySelector("article")) list.appendChild(empty(t("web.reviews.none")));
              }).catch(function (error) { e.target.disabled = false; failed(error); });
            } }));
          var comment = h("input", { type: "text", placeholder: t("web.reviews.comment"), maxlength: 1000,
                                     required: true, "aria-label": t("web.reviews.comment") });
          buttons.appendChild(h("form", { class: "row", onsubmit: function (e) {
            e.preventDefault();
            postJson("/api/reviews/" + w.visit_id + "/return", { comment: comment.value }).then(function () {
              box.remove(); toast(t("web.reviews.returned"));
              if (!list.querySelector("article")) list.appendChild(empty(t("web.reviews.none")));
            }).catch(failed);
          } }, comment, h("button", { type: "submit", text: t("web.reviews.return") })));
        }
        box.appendChild(buttons);
        box.appendChild(details);
        return box;
      }
      if (!queue.items.length) list.appendChild(empty(t("web.reviews.none")));
      queue.items.forEach(function (w) { list.appendChild(item(w)); });
      show(section(t("web.tab.reviews") + " (" + queue.items.length + ")", list, "reviews-page"));
    });
  };

  // ---- alarms --------------------------------------------------------------------------------------------
  function seconds(value) { return value === null || value === undefined ? "–" : value.toFixed(1) + " s"; }

  VIEWS.incidents = function () {
    return getJson("/api/incidents").then(function (board) {
      var f = board.figures;
      var figures = h("div", { class: "figures", "data-testid": "figures" },
        h("p", { text: t("web.incidents.figures", { month: f.month, count: f.count }) }),
        h("p", { text: t("web.incidents.delivery") + ": " + (f.delivery ? f.delivery.map(seconds).join(" / ") :
          t("web.incidents.no_data")) }),
        h("p", { text: t("web.incidents.ack") + ": " + (f.acknowledgement ? f.acknowledgement.map(seconds).join(" / ") :
          t("web.incidents.no_data")) }),
        h("ul", { class: "plain-list" }, f.targets.map(function (x) {
          var verdict = x.met === null ? t("web.incidents.no_data") : x.met ? "✅ " + t("web.incidents.met") :
            "❌ " + t("web.incidents.missed");
          return h("li", { class: x.met === false ? "bad" : null, text: t("web.incidents.target", {
            share: (x.share * 100).toFixed(1).replace(/\.0$/, ""), seconds: x.within_s, measured: seconds(x.measured_s)
          }) + " — " + verdict });
        })));
      function rows(list) {
        if (!list.length) return empty(t("web.incidents.none"));
        return table([["raised", t("web.col.when")], ["collector", t("web.col.collector")],
          ["reason", t("web.col.alarm")], ["status", t("web.col.status")], ["owner", t("web.col.owner")],
          ["resolution", t("web.col.resolution")]], list,
          function (row) { go("incident", row.id); });
      }
      show(section(t("web.tab.incidents"), figures, "incidents-figures"),
        section(t("web.incidents.open"), rows(board.open), "incidents-open"),
        section(t("web.incidents.recent"), rows(board.recent), "incidents-recent"));
    });
  };

  VIEWS.incident = function (id) {
    return getJson("/api/incidents/" + id).then(function (i) {
      show(h("p", null, h("button", { type: "button", class: "linkish", text: "← " + t("web.tab.incidents"),
          onclick: function () { go("incidents"); } })),
        section("🆘 " + i.collector + " · " + i.reason, h("p", { text: [i.raised, i.status, i.owner, i.resolution]
          .filter(Boolean).join(" · ") }), "incident-page"),
        section(t("web.incidents.timeline"), h("ol", { class: "timeline" }, i.events.map(function (e) {
          return h("li", { text: e.at + " · " + e.kind + (e.who ? " · " + e.who : "") +
            (e.lat !== null && e.lat !== undefined ? " · " + e.lat.toFixed(5) + ", " + e.lon.toFixed(5) : "") });
        })), "incident-timeline"));
    });
  };

  // ---- reports -------------------------------------------------------------------------------------------
  function barChart(rows, value, label) {
    var width = 640, bar = 26, gap = 10, left = 120, height = rows.length * (bar + gap) + 30;
    var max = Math.max.apply(null, rows.map(value).concat([1]));
    var svg = s("svg", { viewBox: "0 0 " + width + " " + height, class: "chart", role: "img", "aria-label": label });
    svg.appendChild(s("text", { x: 0, y: 16, class: "chart-title", text: label }));
    rows.forEach(function (row, n) {
      var y = 26 + n * (bar + gap), w = (width - left - 80) * value(row) / max;
      svg.appendChild(s("text", { x: left - 8, y: y + bar * 0.7, class: "chart-label", "text-anchor": "end",
        text: row.name }));
      svg.appendChild(s("rect", { x: left, y: y, width: Math.max(w, 1), height: bar, class: "chart-bar" }));
      svg.appendChild(s("text", { x: left + w + 6, y: y + bar * 0.7, class: "chart-value",
        text: String(row._label || value(row)) }));
    });
    return svg;
  }

  var reportKind = "weekly";
  VIEWS.reports = function () {
    return getJson("/api/reports?kind=" + reportKind).then(function (r) {
      var kinds = h("div", { class: "row" }, ["weekly", "monthly"].map(function (kind) {
        return h("button", { type: "button", class: kind === reportKind ? "primary" : null, text: t("web.reports." + kind),
          onclick: function () { reportKind = kind; go("reports"); } });
      }));
      var xlsx = h("button", { type: "button", "data-testid": "xlsx", text: t("web.reports.download"), onclick: function () {
        download("/api/reports/xlsx?kind=" + reportKind, reportKind + "-" + (r.team || "all") + ".xlsx").catch(failed);
      } });
      var body = h("div", null, kinds, h("p", { class: "muted", text: t("web.reports.period", { start: r.start, end: r.end }) +
        (r.team ? " · " + r.team : "") }), xlsx);
      if (!r.rows.length) body.appendChild(empty(t("web.reports.none")));
      else {
        body.appendChild(barChart(r.rows, function (x) { return x.visits; }, t("web.reports.visits")));
        var money = r.rows.map(function (x) { return { name: x.name, recovered_fen: x.recovered_fen, _label: x.recovered }; });
        body.appendChild(barChart(money, function (x) { return x.recovered_fen; }, t("web.reports.recovered")));
        body.appendChild(table([["name", t("web.col.collector")], ["visits", t("web.reports.visits")],
          ["promises_made", t("web.reports.promises")], ["recovered", t("web.reports.recovered")]], r.rows));
      }
      show(section(t("web.tab.reports"), body, "reports-page"));
    });
  };

  // ---- start ---------------------------------------------------------------------------------------------
  function start() {
    var tg = window.Telegram && window.Telegram.WebApp;
    if (tg && tg.ready) { tg.ready(); if (tg.expand) tg.expand(); }
    state.initData = readInitData();
    if (!state.initData) { fatal("🔒"); return; }
    getJson("/api/me").then(function (me) {
      state.me = me;
      state.msgs = me.messages;
      document.documentElement.lang = me.locale === "zh_CN" ? "zh-CN" : "en";
      document.title = t("web.title");
      document.getElementById("title").textContent = t("web.title");
      document.getElementById("who").textContent = t("web.signed_in_as", { name: me.name, role: me.role_label });
      var tabs = document.getElementById("tabs");
      tabs.querySelectorAll("button").forEach(function (b) {
        var view = b.getAttribute("data-view");
        b.textContent = t("web.tab." + view);
        b.addEventListener("click", function () { go(view); });
      });
      tabs.hidden = false;
      go("map");
    }).catch(function (error) {
      if (error instanceof ApiError && error.status !== 401 && error.status !== 403) {
        fatal(error.body.message || t("web.error.network"));
      } else failed(error);
    });
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
