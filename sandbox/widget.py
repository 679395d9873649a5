"""A stand-in for Blockpass's KYC Connect widget script, so a sign-up page can be tried end to end.

`GET /widget/blockpass-kyc-connect.js` serves a script with the CDN build's interface:
`new BlockpassKYCConnect(clientId, {refId, elementId, ...})` (the npm build's single options object
works too), `startKYCConnect()` and `on(eventName, handler)`, and the events `KYCConnectLoad`,
`KYCConnectData` ({refId, blockPassID, status}), `KYCConnectSuccess` (no data), `KYCConnectCancel`
and `KYCConnectClose`.

Where Blockpass opens its verification flow, the stand-in shows a small dialog. Its Submit button
records the applicant in this sandbox through the control API (`POST /_sandbox/candidates` with the
refId and status "waiting"; a refId the sandbox already knows is moved back to "waiting", as a
resubmission is), then fires KYCConnectData and KYCConnectSuccess. The page that loaded the script
lives on another origin, so those two control routes answer CORS requests from any origin.
"""

from __future__ import annotations

import re

from flask import Blueprint, Response, request

SCRIPT_PATH = "/widget/blockpass-kyc-connect.js"
# Only what the widget calls: creating a candidate and moving one. The rest of the control API
# (reset, faults, clock, ...) stays out of reach of web pages.
WIDGET_CALLS = re.compile(r"/_sandbox/candidates(?:/[^/]+/status)?")

bp = Blueprint("sandbox_widget", __name__)


@bp.get(SCRIPT_PATH)
def widget_script() -> Response:
    return Response(
        WIDGET_SCRIPT,
        mimetype="text/javascript",
        headers={"Cache-Control": "no-store", "Access-Control-Allow-Origin": "*"},
    )


@bp.after_app_request
def _widget_cors(response: Response) -> Response:
    if not request.headers.get("Origin") or not WIDGET_CALLS.fullmatch(request.path):
        return response
    response.headers["Access-Control-Allow-Origin"] = "*"
    if request.method == "OPTIONS":
        response.headers["Access-Control-Allow-Methods"] = "POST"
        response.headers["Access-Control-Allow-Headers"] = "Content-Type"
        response.headers["Access-Control-Max-Age"] = "600"
    return response


WIDGET_SCRIPT = r"""/* Stand-in for the Blockpass KYC Connect widget (CDN build), served by the kyc-relay
   sandbox. Same constructor, methods and events as Blockpass's script. Instead of the verification
   flow it shows a small dialog whose Submit button records the applicant in the sandbox as "waiting". */
(function () {
  "use strict";

  var script = document.currentScript;
  // The sandbox that served this script: its control API records the submission.
  var SANDBOX_URL = script && script.src ? script.src.replace(/\/widget\/[^\/]*$/, "") : "";

  function post(url, body) {
    return fetch(url, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body)
    }).then(function (response) {
      return response.json().catch(function () { return {}; }).then(function (data) {
        return { status: response.status, data: data };
      });
    });
  }

  function recordSubmission(sandboxUrl, refId) {
    var candidates = sandboxUrl + "/_sandbox/candidates";
    var body = { status: "waiting" };
    if (refId !== null) body.refId = refId;
    return post(candidates, body).then(function (answer) {
      if (answer.status === 409 && refId !== null) {
        // The sandbox knows this refId already: a resubmission, back to waiting.
        return post(candidates + "/" + encodeURIComponent(refId) + "/status", { status: "waiting" });
      }
      return answer;
    }).then(function (answer) {
      if (answer.status < 200 || answer.status >= 300) {
        throw new Error((answer.data && answer.data.message) || "the sandbox answered " + answer.status);
      }
      return answer.data;
    });
  }

  function element(tag, text, style) {
    var node = document.createElement(tag);
    if (text) node.textContent = text;
    if (style) node.style.cssText = style;
    return node;
  }

  function BlockpassKYCConnect(clientId, options) {
    if (clientId && typeof clientId === "object") {
      options = clientId;  // npm build: one options object
      clientId = options.clientId;
    }
    if (!clientId) throw new Error("missing clientId params");
    options = options || {};
    this.clientId = String(clientId);
    this.refId = options.refId === undefined || options.refId === null ? null : String(options.refId);
    this.elementId = options.elementId || options.elementButtonId || "blockpass-kyc-connect";
    this.mainColor = options.mainColor ? String(options.mainColor) : "1b75bc";
    this.sandboxUrl = String(options.sandboxUrl || SANDBOX_URL).replace(/\/+$/, "");
    this._handlers = {};
    this._overlay = null;
    this._bound = false;
  }

  BlockpassKYCConnect.prototype.on = function (eventName, handler) {
    (this._handlers[eventName] = this._handlers[eventName] || []).push(handler);
    return this;
  };

  BlockpassKYCConnect.prototype._emit = function (eventName, data) {
    (this._handlers[eventName] || []).slice().forEach(function (handler) {
      try {
        if (data === undefined) handler(); else handler(data);
      } catch (error) {
        setTimeout(function () { throw error; });  // a page's handler must not break the widget
      }
    });
  };

  // As in the CDN build: with a button of id `elementId` on the page, a click on it opens the
  // widget; without one, the widget opens at once.
  BlockpassKYCConnect.prototype.startKYCConnect = function () {
    var self = this;
    var button = document.getElementById(this.elementId);
    if (!button) {
      this._open();
      return;
    }
    if (this._bound) return;
    this._bound = true;
    button.addEventListener("click", function (event) {
      event.preventDefault();
      self._open();
    });
  };

  BlockpassKYCConnect.prototype._open = function () {
    if (this._overlay) return;
    var self = this;
    var color = /^[0-9a-fA-F]{3,8}$/.test(this.mainColor) ? "#" + this.mainColor : this.mainColor;
    var overlay = element("div", "", "position:fixed;inset:0;background:rgba(15,23,42,.55);" +
      "z-index:2147483647;display:flex;align-items:center;justify-content:center;" +
      "font:15px/1.4 system-ui,sans-serif");
    overlay.setAttribute("data-blockpass-sandbox", "");
    var dialog = element("div", "", "background:#fff;color:#111;border-radius:10px;padding:24px;" +
      "width:340px;box-shadow:0 10px 40px rgba(0,0,0,.3)");
    dialog.setAttribute("role", "dialog");
    dialog.setAttribute("aria-modal", "true");
    dialog.setAttribute("aria-labelledby", "blockpass-sandbox-title");
    var title = element("h2", "Blockpass sandbox", "margin:0 0 8px;font-size:18px;color:" + color);
    title.id = "blockpass-sandbox-title";
    dialog.appendChild(title);
    dialog.appendChild(element("p", "Stand-in for the KYC Connect widget. Submit records this applicant " +
      "in the sandbox as waiting for review.", "margin:0 0 12px;color:#444"));
    var facts = element("dl", "", "margin:0 0 16px;display:grid;grid-template-columns:auto 1fr;gap:2px 10px");
    var shown = [["Client ID", this.clientId], ["refId", this.refId === null ? "(none)" : this.refId]];
    shown.forEach(function (pair) {
      facts.appendChild(element("dt", pair[0], "color:#666"));
      facts.appendChild(element("dd", pair[1], "margin:0;font-family:monospace;word-break:break-all"));
    });
    dialog.appendChild(facts);
    var note = element("p", "", "margin:0 0 12px;color:#b91c1c;min-height:1em");
    note.setAttribute("role", "alert");
    dialog.appendChild(note);
    var actions = element("div", "", "display:flex;gap:8px;justify-content:flex-end");
    var cancel = element("button", "Cancel", "padding:8px 14px;border:1px solid #ccc;background:#fff;" +
      "border-radius:6px;cursor:pointer");
    cancel.type = "button";
    var submit = element("button", "Submit", "padding:8px 14px;border:0;background:" + color +
      ";color:#fff;border-radius:6px;cursor:pointer");
    submit.type = "button";
    actions.appendChild(cancel);
    actions.appendChild(submit);
    dialog.appendChild(actions);
    overlay.appendChild(dialog);
    document.body.appendChild(overlay);
    this._overlay = overlay;

    cancel.addEventListener("click", function () {
      self._close();
      self._emit("KYCConnectCancel");
      self._emit("KYCConnectClose");
    });
    submit.addEventListener("click", function () {
      submit.disabled = true;
      cancel.disabled = true;
      note.style.color = "#444";
      note.textContent = "Submitting\u2026";
      recordSubmission(self.sandboxUrl, self.refId).then(function (candidate) {
        self._close();
        self._emit("KYCConnectData", {
          refId: candidate.refId === undefined ? null : candidate.refId,
          blockPassID: candidate.blockPassID,
          status: candidate.status
        });
        self._emit("KYCConnectSuccess");
        self._emit("KYCConnectClose");
      }, function (error) {
        note.style.color = "#b91c1c";
        note.textContent = "The sandbox did not take the submission: " + error.message;
        submit.disabled = false;
        cancel.disabled = false;
      });
    });
    submit.focus();
    this._emit("KYCConnectLoad");
  };

  BlockpassKYCConnect.prototype._close = function () {
    if (this._overlay && this._overlay.parentNode) this._overlay.parentNode.removeChild(this._overlay);
    this._overlay = null;
  };

  window.BlockpassKYCConnect = BlockpassKYCConnect;
})();
"""
