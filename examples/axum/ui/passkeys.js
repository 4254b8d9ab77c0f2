// Passkeys on the pages: the few lines WebAuthn needs, no framework. A button marked
// `data-passkey` ("login" or "register") sits in a form with `csrf`, `ceremony` and
// `credential` fields: the click asks the server to begin a ceremony (`data-start`), hands
// its options to the browser's authenticator, and posts the form with the answer. The
// server checks everything; this only carries it. Without WebAuthn the buttons stay hidden.
"use strict";
(function () {
  var supported = window.PublicKeyCredential &&
    typeof PublicKeyCredential.parseCreationOptionsFromJSON === "function" &&
    typeof PublicKeyCredential.parseRequestOptionsFromJSON === "function";
  document.querySelectorAll("button[data-passkey]").forEach(function (button) {
    if (!supported) {
      return;
    }
    var form = button.form;
    var status = form.querySelector("[data-passkey-status]");
    button.hidden = false;
    button.addEventListener("click", async function () {
      status.textContent = "";
      // A name the server would refuse is caught before the authenticator makes a key.
      var name = form.elements.name;
      if (name && !name.value.trim()) {
        status.textContent = "Give the passkey a name first.";
        name.focus();
        return;
      }
      button.disabled = true;
      try {
        var begun = await fetch(button.dataset.start, {
          method: "POST",
          credentials: "same-origin",
          headers: { "Content-Type": "application/x-www-form-urlencoded" },
          body: new URLSearchParams({ csrf: form.elements.csrf.value })
        });
        var answer = await begun.json();
        if (!begun.ok) {
          throw new Error(answer.detail || "the server refused to begin");
        }
        var credential = button.dataset.passkey === "register"
          ? await navigator.credentials.create({
            publicKey: PublicKeyCredential.parseCreationOptionsFromJSON(answer.options)
          })
          : await navigator.credentials.get({
            publicKey: PublicKeyCredential.parseRequestOptionsFromJSON(answer.options)
          });
        form.elements.ceremony.value = answer.ceremony;
        form.elements.credential.value = JSON.stringify(credential.toJSON());
        form.submit();
      } catch (error) {
        status.textContent = error && error.name === "NotAllowedError"
          ? "No passkey was used: the request was cancelled, timed out, or found no passkey for this site."
          : "The passkey could not be used: " + (error && error.message ? error.message : error) + ".";
        button.disabled = false;
      }
    });
  });
})();
