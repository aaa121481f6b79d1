// Rampart dashboard: the overview's live part, replaced as the server
// pushes it (server-sent events). The server renders and escapes it; this
// script only swaps it in.
(function () {
  'use strict';
  var live = document.getElementById('live');
  if (!live || !window.EventSource) {
    return;
  }
  var status = document.getElementById('live-status');
  var setState = function (s) {
    if (status) {
      status.setAttribute('data-state', s);
      status.title = 'Live updates: ' + s;
    }
  };
  var updates = 0;
  var src = new EventSource('stream?window=' + encodeURIComponent(live.getAttribute('data-window') || '1h'));
  src.onopen = function () { setState('connected'); };
  src.onerror = function () { setState('reconnecting'); };
  src.addEventListener('overview', function (e) {
    live.innerHTML = e.data;
    updates++;
    document.body.setAttribute('data-live-updates', String(updates));
    setState('connected');
  });
  window.addEventListener('pagehide', function () { src.close(); });
})();
