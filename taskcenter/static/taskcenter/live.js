/* Task Center console: update the page in place from the task event stream.
 *
 * The page carries its settings in <script id="taskcenter-live" type="application/json">
 * (taskcenter/admin/live.py): the stream to open, and each status's label and colour. Then:
 *   [data-task-status="<id>"]    a status badge: relabelled and recoloured on the task's events;
 *   [data-task-progress="<id>"]  a progress bar (its [data-progress-bar] inside): width, text;
 *   [data-live-region][id]       a part the server adds up (counts): fetched again from this
 *                                page, at most every few seconds, when events arrive.
 * EventSource reconnects by itself and sends Last-Event-ID, so the server replays what the page
 * missed while it was away. No build step, no dependencies.
 */
(function () {
  "use strict";

  var REFRESH_MIN_INTERVAL_MS = 3000;

  function readSettings() {
    var element = document.getElementById("taskcenter-live");
    if (!element || !window.EventSource) {
      return null;
    }
    try {
      return JSON.parse(element.textContent);
    } catch (error) {
      return null;
    }
  }

  function each(selector, callback) {
    Array.prototype.forEach.call(document.querySelectorAll(selector), callback);
  }

  function showStatus(settings, taskId, status) {
    var look = settings.statuses[status] || { label: status, colour: "#6c757d" };
    each('[data-task-status="' + taskId + '"]', function (badge) {
      badge.textContent = look.label;
      badge.style.background = look.colour;
      badge.setAttribute("data-status", status);
    });
    each('[data-task-progress="' + taskId + '"] [data-progress-bar]', function (bar) {
      bar.style.background = look.colour;
    });
  }

  function showProgress(taskId, percent, message) {
    each('[data-task-progress="' + taskId + '"]', function (holder) {
      holder.title = message || "";
      holder.setAttribute("data-progress", String(percent));
      var bar = holder.querySelector("[data-progress-bar]");
      if (bar) {
        bar.style.width = percent + "%";
        bar.textContent = percent + "%";
      }
    });
  }

  function regionRefresher() {
    var regions = document.querySelectorAll("[data-live-region][id]");
    if (!regions.length) {
      return function () {};
    }
    var last = 0;
    var timer = null;

    function refresh() {
      timer = null;
      last = Date.now();
      fetch(window.location.href, { credentials: "same-origin", headers: { Accept: "text/html" } })
        .then(function (response) {
          return response.ok ? response.text() : null;
        })
        .then(function (html) {
          if (!html) {
            return;
          }
          var fresh = new DOMParser().parseFromString(html, "text/html");
          each("[data-live-region][id]", function (region) {
            var replacement = fresh.getElementById(region.id);
            if (replacement) {
              region.innerHTML = replacement.innerHTML;
            }
          });
        })
        .catch(function () {});
    }

    // At most one fetch per interval, however many events arrive: the counts are the
    // server's to add up, and a busy system sends many events a second.
    return function schedule() {
      if (timer === null) {
        timer = window.setTimeout(refresh, Math.max(0, last + REFRESH_MIN_INTERVAL_MS - Date.now()));
      }
    };
  }

  function start() {
    var settings = readSettings();
    if (!settings) {
      return;
    }
    var scheduleRefresh = regionRefresher();
    var source = new EventSource(settings.stream, { withCredentials: true });
    source.onmessage = function (message) {
      var event;
      try {
        event = JSON.parse(message.data);
      } catch (error) {
        return;
      }
      var task = event.task || {};
      if (task.status) {
        showStatus(settings, event.task_id, task.status);
      }
      if (typeof task.progress === "number") {
        showProgress(event.task_id, task.progress, task.progress_message);
      }
      document.documentElement.setAttribute("data-live-last-event", String(event.id));
      scheduleRefresh();
    };
    source.onopen = function () {
      document.documentElement.setAttribute("data-live", "open");
    };
    source.onerror = function () {
      document.documentElement.setAttribute("data-live", "reconnecting");
    };
    window.addEventListener("pagehide", function () {
      source.close();
    });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
