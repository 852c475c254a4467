// The fhirclient.js peer of examples/chi for the load program's CPU per
// launch: the same three requests per launch, on the same paths, written
// as fhirclient's documentation shows for Node (express, express-session
// with its default MemoryStore, require("fhirclient")(req, res)).
//
//   GET /fhir/launch?iss=…&launch=…  authorize: redirect to the EHR
//   GET /fhir/callback?code=…&state=… ready: the token exchange, then a
//                                    redirect to the app page
//   GET /fhir/api/patient            ready from the session, one FHIR read
//                                    of the launch's Patient
//   GET /healthz                     "ok", for the load program to wait on
//
// The load program starts it with SMART_ADDR (host:port to listen on),
// SMART_ISSUER (the sandbox EHR's FHIR base URL, the only one accepted) and
// SMART_CLIENT_ID; SMART_SCOPE overrides the scope, which is by default the
// one the library and the example request.
"use strict";

const crypto = require("node:crypto");
const express = require("express");
const session = require("express-session");
const smart = require("fhirclient");

const addr = process.env.SMART_ADDR || "127.0.0.1:8080";
const issuer = process.env.SMART_ISSUER;
const clientId = process.env.SMART_CLIENT_ID;
const scope = process.env.SMART_SCOPE || "launch openid fhirUser patient/*.read offline_access";
if (!issuer || !clientId) {
  console.error("fhirclient peer: SMART_ISSUER and SMART_CLIENT_ID are required");
  process.exit(2);
}
const sep = addr.lastIndexOf(":");
const host = addr.slice(0, sep);
const port = Number(addr.slice(sep + 1));
const base = "http://" + addr;

const app = express();
app.use(session({
  secret: crypto.randomBytes(32).toString("hex"),
  resave: false,
  saveUninitialized: false,
}));

app.get("/fhir/launch", (req, res, next) => {
  // The example accepts launches from its configured issuers only.
  if (req.query.iss !== issuer) {
    res.status(400).send("unknown issuer");
    return;
  }
  smart(req, res).authorize({
    clientId,
    scope,
    redirectUri: base + "/fhir/callback",
    iss: req.query.iss,
    launch: req.query.launch,
  }).catch(next);
});

app.get("/fhir/callback", (req, res, next) => {
  smart(req, res).ready().then(() => {
    // fhirclient keeps one launch per session (under its SMART_KEY), so
    // the page needs no handle to find it; the parameter is there because
    // the load program's browser knows the app page by it.
    res.redirect("/fhir/?launch_handle=session");
  }).catch(next);
});

app.get("/fhir/api/patient", (req, res, next) => {
  smart(req, res).ready()
    .then(client => client.request("Patient/" + client.patient.id))
    .then(patient => {
      res.set("Cache-Control", "no-store");
      res.json(patient);
    })
    .catch(next);
});

app.get("/healthz", (req, res) => res.type("text/plain").send("ok"));

// Errors answer 500 with a fixed text: a message may hold a URL with a
// code or state in it.
app.use((err, req, res, next) => {
  console.error("fhirclient peer:", req.method, req.path, err.name);
  res.status(500).type("text/plain").send("error");
});

app.listen(port, host, () => console.log("fhirclient peer listening on", base));
