// Runs first: records script errors into <html data-errors>, so a headless
// browser can check the page by its DOM alone.
(function () {
  "use strict";
  const errors = [];
  window.golensError = function (msg) {
    errors.push(String(msg));
    document.documentElement.dataset.errors = errors.join(" | ");
  };
  window.addEventListener("error", (e) => window.golensError(e.message));
  window.addEventListener("unhandledrejection", (e) => window.golensError(e.reason));
  const consoleError = console.error;
  console.error = function (...args) {
    window.golensError(args.join(" "));
    consoleError.apply(console, args);
  };
})();
