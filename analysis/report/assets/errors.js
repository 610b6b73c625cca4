// Runs first on a full page (not in a fragment): records script errors, and
// what a fragment's script reports with console.error, into
// <html data-errors>, so a headless browser can check the page by its DOM
// alone.
(function () {
  "use strict";
  const errors = [];
  const record = (msg) => {
    errors.push(String(msg));
    document.documentElement.dataset.errors = errors.join(" | ");
  };
  window.addEventListener("error", (e) => record(e.message));
  window.addEventListener("unhandledrejection", (e) => record(e.reason));
  const consoleError = console.error;
  console.error = function (...args) {
    record(args.join(" "));
    consoleError.apply(console, args);
  };
})();
