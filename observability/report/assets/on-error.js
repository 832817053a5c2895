window.onerror = function (message, source, line) {
  var box = document.createElement('div');
  box.id = 'script-error';
  box.textContent = 'script error: ' + message + (line ? ' (line ' + line + ')' : '');
  (document.body || document.documentElement).appendChild(box);
};
