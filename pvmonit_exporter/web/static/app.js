// The live page: reads /api/state every few seconds and draws one card per device and probe.
// Vanilla JS, no dependency, nothing fetched from anywhere but this exporter. Shape of the JSON: docs/api-state.md.
"use strict";
(() => {
  const REFRESH_MS = 2000;
  const TIMEOUT_MS = 5000;
  const STORE_KEY = "pvmonit.lang";
  const NBSP = "\u00a0";

  const MESSAGES = {
    en: {
      title: "PvMonit — live", loading: "Loading…", language: "Language", forwarder: "emoncms forwarder",
      mqtt: "MQTT broker", mqtt_connected: "Connected", mqtt_away: "Away — live values dropped", mqtt_state: "State",
      mqtt_dropped: "Dropped",
      updated: "Live · updated at {time}", live: "Live", offline: "No connection to the exporter for {age} — retrying",
      offline_never: "Cannot reach the exporter — retrying", nothing: "No device or probe is configured.",
      stale: "Stale", stale_since: "Stale — last data {age} ago", never_seen: "Never seen — no data received yet",
      no_connection: "No connection to the exporter", port: "Port", last_block: "Last block {age} ago", last_reading: "Last reading {age} ago",
      firmware: "firmware {v}", serial: "serial {v}", alerts: "Alerts",
      kind_mppt: "Solar charger", kind_bmv: "Battery monitor", kind_inverter: "Inverter", kind_charger: "Charger",
      kind_unknown: "VE.Direct device",
      charging: "Charging", discharging: "Discharging", idle: "Idle",
      error: "Error", alarm: "Alarm", alarm_active: "Alarm active", warning: "Warning", off_reason: "Off reason",
      V: "Battery voltage", VS: "Starter battery", VM: "Mid-point voltage", DM: "Mid-point deviation",
      I: "Battery current", P: "Battery power", SOC: "State of charge", TTG: "Time to go", CE: "Consumed",
      T: "Battery temperature", PPV: "PV power", VPV: "Panel voltage", MPPT: "Tracker", H20: "Yield today",
      H21: "Max. power today", H22: "Yield yesterday", LOAD: "Load output", IL: "Load current", MODE: "Mode",
      AC_OUT_V: "AC output voltage", AC_OUT_I: "AC output current", AC_OUT_S: "AC output power",
      DC_IN_V: "DC input voltage", DC_IN_I: "DC input current", DC_IN_P: "DC input power", Relay: "Relay",
      on: "On", off: "Off", closed: "Closed", open: "Open", infinite: "∞",
      probe_temperature: "Temperature probe", probe_current: "Current probe", probe_power: "Power probe",
      temperature: "Temperature", current: "Current", consumption: "Consumption",
      probe_stale: "Stale — last reading {age} ago", probe_never: "Never seen — no reading yet",
      probe_error: "Last error", fw_off: "emoncms: off", backlog: "Backlog", rows: "{n} rows", row: "1 row",
      no_rows: "none", last_send: "Last send", never: "never", ago: "{age} ago", rejected: "Rejected",
      last_error: "Last error", u_d: "d",
      at_a_glance: "At a glance", pv_total: "PV power", pv_total_of: "PV power ({n} chargers)",
      unavailable: "Unavailable", fw_unknown: "emoncms: unknown", last_24h: "Last 24 hours",
      now: "now", hours_ago: "−24 h", chart_range: "{title}, last 24 hours: from {min} to {max}, now {last}",
      chart_empty: "{title}: no point yet",
      history_note: "The charts fill in every 5 minutes; they start empty when the exporter restarts.",
      yield_30d: "Daily yield, last 30 days", today: "Today", yesterday: "Yesterday", days_ago: "{n} days ago",
      yield_kwh: "Yield", consumed_kwh: "Load output", max_power_w: "Max. power",
      battery_voltage_max_v: "Battery max.", battery_voltage_min_v: "Battery min.",
      max_battery_current_a: "Max. battery current", max_pv_voltage_v: "Max. panel voltage", bulk_min: "Bulk",
      absorption_min: "Absorption", float_min: "Float", day_errors: "Errors",
      actuator: "Switched load", act_on: "on", act_off: "off", act_auto: "automatic",
      act_since: "{state} since {time}: {reason}", act_mode: "Mode", mode_auto: "automatic", mode_on: "forced on",
      mode_off: "forced off", mode_none: "no rule: kept safe", dry_run: "Dry run", fault: "Fault",
      act_type_command: "command", act_type_gpio: "GPIO", act_type_vedirect_load: "charger's load output",
      act_guard: "Held back", act_error: "Problem", act_dry_note: "Dry run: decided, nothing switched",
    },
    fr: {
      title: "PvMonit — en direct", loading: "Chargement…", language: "Langue", forwarder: "Envoi vers emoncms",
      mqtt: "Courtier MQTT", mqtt_connected: "Connecté", mqtt_away: "Injoignable — valeurs en direct perdues",
      mqtt_state: "État", mqtt_dropped: "Perdues",
      updated: "En direct · mis à jour à {time}", live: "En direct",
      offline: "Pas de connexion à l'exportateur depuis {age} — nouvel essai en cours",
      offline_never: "Exportateur injoignable — nouvel essai en cours", nothing: "Aucun appareil ni sonde configuré.",
      stale: "Périmé", stale_since: "Périmé — dernières données il y a {age}",
      never_seen: "Jamais vu — aucune donnée reçue", no_connection: "Pas de connexion à l'exportateur",
      port: "Port", last_block: "Dernier bloc il y a {age}", last_reading: "Dernière mesure il y a {age}", firmware: "micrologiciel {v}", serial: "n° de série {v}",
      alerts: "Alertes",
      kind_mppt: "Régulateur solaire", kind_bmv: "Contrôleur de batterie", kind_inverter: "Onduleur",
      kind_charger: "Chargeur", kind_unknown: "Appareil VE.Direct",
      charging: "En charge", discharging: "En décharge", idle: "Au repos",
      error: "Erreur", alarm: "Alarme", alarm_active: "Alarme active", warning: "Avertissement",
      off_reason: "Raison de l'arrêt",
      V: "Tension batterie", VS: "Batterie de démarrage", VM: "Tension médiane", DM: "Écart médian",
      I: "Courant batterie", P: "Puissance batterie", SOC: "État de charge", TTG: "Autonomie restante",
      CE: "Consommé", T: "Température batterie", PPV: "Puissance solaire", VPV: "Tension panneaux",
      MPPT: "Suivi MPPT", H20: "Production du jour", H21: "Puissance max. du jour", H22: "Production d'hier",
      LOAD: "Sortie de charge", IL: "Courant de sortie de charge", MODE: "Mode",
      AC_OUT_V: "Tension de sortie AC", AC_OUT_I: "Courant de sortie AC", AC_OUT_S: "Puissance de sortie AC",
      DC_IN_V: "Tension d'entrée DC", DC_IN_I: "Courant d'entrée DC", DC_IN_P: "Puissance d'entrée DC",
      Relay: "Relais",
      on: "Marche", off: "Arrêt", closed: "Fermé", open: "Ouvert", infinite: "∞",
      probe_temperature: "Sonde de température", probe_current: "Sonde de courant",
      probe_power: "Sonde de puissance", temperature: "Température", current: "Courant",
      consumption: "Consommation", probe_stale: "Périmé — dernière mesure il y a {age}",
      probe_never: "Jamais vu — aucune mesure reçue", probe_error: "Dernière erreur", fw_off: "emoncms\u202f: désactivé",
      backlog: "En attente", rows: "{n} lignes", row: "1 ligne", no_rows: "aucune", last_send: "Dernier envoi",
      never: "jamais", ago: "il y a {age}", rejected: "Rejetées", last_error: "Dernière erreur", u_d: "j",
      at_a_glance: "En un coup d'œil", pv_total: "Puissance solaire",
      pv_total_of: "Puissance solaire ({n} régulateurs)", unavailable: "Indisponible",
      fw_unknown: "emoncms : inconnu", last_24h: "Dernières 24 heures", now: "maintenant",
      hours_ago: "−24 h", chart_range: "{title}, dernières 24 heures : de {min} à {max}, maintenant {last}",
      chart_empty: "{title} : pas encore de point",
      history_note: "Les courbes se remplissent toutes les 5 minutes ; elles repartent de zéro au redémarrage de l'exportateur.",
      yield_30d: "Production par jour, 30 derniers jours", today: "Aujourd'hui", yesterday: "Hier",
      days_ago: "Il y a {n} jours", yield_kwh: "Production", consumed_kwh: "Sortie charge",
      max_power_w: "Puissance max.", battery_voltage_max_v: "Batterie max.", battery_voltage_min_v: "Batterie min.",
      max_battery_current_a: "Courant batterie max.", max_pv_voltage_v: "Tension panneaux max.", bulk_min: "Bulk",
      absorption_min: "Absorption", float_min: "Floating", day_errors: "Erreurs",
      actuator: "Charge commandée", act_on: "allumé", act_off: "éteint", act_auto: "automatique",
      act_since: "{state} depuis {time}\u202f: {reason}", act_mode: "Mode", mode_auto: "automatique",
      mode_on: "forcé allumé", mode_off: "forcé éteint", mode_none: "sans règle\u202f: laissé sûr",
      dry_run: "Simulation", fault: "Défaut", act_type_command: "commande", act_type_gpio: "GPIO",
      act_type_vedirect_load: "sortie de charge du régulateur", act_guard: "Retenu", act_error: "Problème",
      act_dry_note: "Simulation\u202f: décidé, rien n'est commuté",
    },
  };

  // The device's own words (states, errors, alarm, warning and off reasons, modes), as /api/state gives them.
  const WORDS_FR = {
    "Off": "Arrêt", "Low power": "Basse consommation", "Fault": "Défaut", "Bulk": "Bulk (charge principale)",
    "Absorption": "Absorption", "Float": "Floating (entretien)", "Storage": "Stockage",
    "Equalize (manual)": "Égalisation (manuelle)", "Passthru": "Passage direct (secteur)", "Inverting": "Onduleur en marche",
    "Assisting": "Assistance", "Power supply": "Alimentation", "Sustain": "Maintien", "Starting-up": "Démarrage",
    "Repeated absorption": "Absorption répétée", "Auto equalize / Recondition": "Égalisation auto / reconditionnement",
    "BatterySafe": "BatterySafe", "External control": "Contrôle externe", "Unknown": "Inconnu",
    "No error": "Aucune erreur", "Battery voltage too high": "Tension batterie trop haute",
    "Charger temperature too high": "Température du chargeur trop haute",
    "Charger over current": "Surintensité du chargeur", "Charger current reversed": "Courant du chargeur inversé",
    "Bulk time limit exceeded": "Durée maximale de bulk dépassée", "Current sensor issue": "Problème de capteur de courant",
    "Terminals overheated": "Bornes en surchauffe", "Converter issue": "Problème de convertisseur",
    "Input voltage too high (solar panel)": "Tension d'entrée trop haute (panneaux)",
    "Input current too high (solar panel)": "Courant d'entrée trop haut (panneaux)",
    "Input shutdown (excessive battery voltage)": "Entrée coupée (tension batterie excessive)",
    "Input shutdown (current flow during off mode)": "Entrée coupée (courant à l'arrêt)",
    "Lost communication with one of devices": "Communication perdue avec un appareil",
    "Synchronised charging device configuration issue": "Problème de configuration de la charge synchronisée",
    "BMS connection lost": "Connexion au BMS perdue", "Network misconfigured": "Réseau mal configuré",
    "Factory calibration data lost": "Données d'étalonnage d'usine perdues",
    "Invalid/incompatible firmware": "Micrologiciel invalide ou incompatible",
    "User settings invalid": "Réglages utilisateur invalides",
    "Low voltage": "Tension basse", "High voltage": "Tension haute", "Low SOC": "État de charge bas",
    "Low starter voltage": "Tension de démarrage basse", "High starter voltage": "Tension de démarrage haute",
    "Low temperature": "Température basse", "High temperature": "Température haute", "Mid voltage": "Tension médiane",
    "Overload": "Surcharge", "DC-ripple": "Ondulation DC", "Low V AC out": "Tension AC de sortie basse",
    "High V AC out": "Tension AC de sortie haute", "Short circuit": "Court-circuit", "BMS lockout": "Verrouillage BMS",
    "No input power": "Pas de puissance en entrée", "Switched off (power switch)": "Éteint (interrupteur)",
    "Switched off (device mode register)": "Éteint (registre de mode)", "Remote input": "Entrée de commande à distance",
    "Protection active": "Protection active", "Paygo": "Paygo", "BMS": "BMS",
    "Engine shutdown detection": "Détection d'arrêt moteur", "Analysing input voltage": "Analyse de la tension d'entrée",
    "Battery temperature": "Température batterie",
    "Voltage or current limited": "Limité en tension ou en courant", "MPPT tracker active": "Suivi MPPT actif",
    "Charger on": "Chargeur en marche", "Inverter on": "Onduleur en marche", "Device on": "Appareil en marche",
    "Device off": "Appareil arrêté", "Eco": "Éco", "Hibernate": "Hibernation",
  };

  let lang = chooseLanguage();
  let lastDoc = null; // the last /api/state read
  let lastOkAt = null; // performance.now() of that read
  let failing = false;
  let timer = null;
  let waitingForVisible = false;
  const numberFormats = new Map();

  function chooseLanguage() {
    try {
      const saved = localStorage.getItem(STORE_KEY);
      if (saved === "en" || saved === "fr") return saved;
    } catch (e) { /* storage disabled: follow the browser */ }
    const preferred = (navigator.languages && navigator.languages[0]) || navigator.language || "en";
    return /^fr(-|$)/i.test(preferred) ? "fr" : "en";
  }

  function t(key, vars) {
    let text = MESSAGES[lang][key] ?? MESSAGES.en[key] ?? key;
    for (const [name, value] of Object.entries(vars || {})) text = text.replace(`{${name}}`, value);
    return text;
  }

  // "Alarm: Low SOC" / "Alarme : État de charge bas" (French puts a narrow space before the colon).
  const said = (key, text) => t(key) + (lang === "fr" ? "\u202f: " : ": ") + text;

  const word = (english) => (lang === "fr" && english in WORDS_FR ? WORDS_FR[english] : english);

  function num(value, digits) {
    const key = `${lang}/${digits}`;
    if (!numberFormats.has(key)) {
      numberFormats.set(key, new Intl.NumberFormat(lang === "fr" ? "fr-FR" : "en-GB",
        { minimumFractionDigits: digits, maximumFractionDigits: digits }));
    }
    return numberFormats.get(key).format(value);
  }

  const withUnit = (value, digits, unit) => num(value, digits) + NBSP + unit;

  // 42 s, 5 min, 2 h 05 min, 3 d
  function duration(seconds) {
    const s = Math.max(0, Math.round(seconds));
    if (s < 120) return `${s}${NBSP}s`;
    if (s < 7200) return `${Math.round(s / 60)}${NBSP}min`;
    if (s < 172800) return `${Math.floor(s / 3600)}${NBSP}h${NBSP}${String(Math.floor(s / 60) % 60).padStart(2, "0")}${NBSP}min`;
    return `${Math.floor(s / 86400)}${NBSP}${t("u_d")}`;
  }

  // Small DOM builder: h("p", {class: "x"}, "text", child…). Text always goes in as text, never as HTML.
  function h(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs || {})) {
      if (value !== null && value !== undefined && value !== false) node.setAttribute(name, String(value));
    }
    for (const child of children.flat()) {
      if (child !== null && child !== undefined && child !== false) node.append(child);
    }
    return node;
  }

  function meter(label, value, min, max, text, tone) {
    const clamped = Math.min(max, Math.max(min, value));
    const fill = h("div", { class: `fill ${tone}` });
    fill.style.width = `${((clamped - min) / (max - min)) * 100}%`;
    return h("div", {
      class: "meter", role: "meter", "aria-label": label, "aria-valuemin": min, "aria-valuemax": max,
      "aria-valuenow": Math.round(clamped * 1000) / 1000, "aria-valuetext": text,
    }, fill);
  }

  const volts = (v, d) => withUnit(v, d, "V");
  const amps = (v, d) => withUnit(v, d, "A");
  const watts = (v) => withUnit(v, 0, "W");
  const kwh = (joules) => withUnit(joules / 3.6e6, 2, "kWh");

  // What a device card shows, in this order: [label, text of the value, bar (its range and colour from the
  // page settings, given the value), the value on the bar's scale when it differs].
  const ROWS = [
    ["V", (f) => volts(f.value, 2), (p, v) => [p.battery_voltage_min, p.battery_voltage_max, "volt"]],
    ["SOC", (f) => withUnit(f.value * 100, 1, "%"),
      (p, v) => [0, 100, v < 0.3 ? "low" : v < 0.5 ? "mid" : "good"], (v) => v * 100],
    ["PPV", (f) => watts(f.value), (p) => [0, p.pv_power_max, "sun"]],
    ["AC_OUT_S", (f) => withUnit(f.value, 0, "VA"), (p, v) => [0, p.consumption_max, v > 0.9 * p.consumption_max ? "low" : "use"]],
    ["I", (f) => amps(f.value, 2)], ["P", (f) => watts(f.value)],
    ["TTG", (f) => (f.value === "inf" ? t("infinite") : duration(f.value))],
    ["CE", (f) => withUnit(f.value / 3600, 1, "Ah")], ["T", (f) => withUnit(f.value, Number.isInteger(f.value) ? 0 : 1, "°C")],
    ["VS", (f) => volts(f.value, 2)], ["VM", (f) => volts(f.value, 2)], ["DM", (f) => withUnit(f.value * 100, 1, "%")],
    ["VPV", (f) => volts(f.value, 1)], ["MPPT", (f) => word(f.text)],
    ["H20", (f) => kwh(f.value)], ["H21", (f) => watts(f.value)], ["H22", (f) => kwh(f.value)],
    ["LOAD", (f) => t(f.value ? "on" : "off")], ["IL", (f) => amps(f.value, 2)], ["MODE", (f) => word(f.text)],
    ["AC_OUT_V", (f) => volts(f.value, 1)], ["AC_OUT_I", (f) => amps(f.value, 1)],
    ["DC_IN_V", (f) => volts(f.value, 2)], ["DC_IN_I", (f) => amps(f.value, 1)], ["DC_IN_P", (f) => watts(f.value)],
    ["Relay", (f) => t(f.value ? "closed" : "open")],
  ];

  function row(field, label, text, bar) {
    const words = !/[\d∞]/.test(text); // states in words: smaller than numbers
    return h("div", { class: bar ? "row has-bar" : "row", "data-field": field },
      h("dt", null, label), h("dd", null, h("span", { class: words ? "value words" : "value" }, text), bar));
  }

  function alerts(fields) {
    const items = [];
    const flags = (label) => (fields[label] && fields[label].flags) || [];
    if (fields.ERR && fields.ERR.value) items.push(["error", said("error", word(fields.ERR.text))]);
    if (flags("AR").length) items.push(["alarm", said("alarm", flags("AR").map(word).join(", "))]);
    else if (fields.Alarm && fields.Alarm.value) items.push(["alarm", t("alarm_active")]);
    if (flags("WARN").length) items.push(["warning", said("warning", flags("WARN").map(word).join(", "))]);
    if (flags("OR").length) items.push(["info", said("off_reason", flags("OR").map(word).join(", "))]);
    if (!items.length) return null;
    return h("ul", { class: "alerts", "aria-label": t("alerts") },
      items.map(([kind, text]) => h("li", { class: `alert ${kind}` }, text)));
  }

  function badge(text, kind) {
    return h("span", { class: `badge ${kind || ""}`.trim() }, text);
  }

  function deviceState(d) {
    const cs = d.fields.CS;
    if (cs && cs.text) return badge(word(cs.text), cs.value === 2 ? "bad" : cs.value === 0 ? "quiet" : "");
    const current = d.fields.I && typeof d.fields.I.value === "number" ? d.fields.I.value : null;
    if (d.kind === "bmv" && current !== null) {
      return badge(t(current > 0.05 ? "charging" : current < -0.05 ? "discharging" : "idle"));
    }
    return null;
  }

  function staleNote(text) {
    return h("p", { class: "stale-note" }, text);
  }

  function deviceCard(d, index, page, offline, extraAge) {
    const id = `device-${index}`;
    const up = d.up && !offline;
    const subtitle = [d.product || t(`kind_${d.kind}`), d.serial_number && t("serial", { v: d.serial_number }),
      d.source === "ble" && d.port]; // a Bluetooth device: its address and radio ("… (simulated Bluetooth)")
    const card = h("article", {
      class: up ? "card" : "card stale", "data-name": d.name, "data-kind": d.kind, "data-up": String(up),
      "aria-labelledby": id,
    });
    card.append(h("header", null,
      h("div", null, h("h2", { id }, d.name), h("p", { class: "product" }, subtitle.filter(Boolean).join(" · "))),
      up ? deviceState(d) : badge(t("stale"), "stale")));
    if (!up) {
      const age = d.age_seconds === null ? null : d.age_seconds + extraAge;
      card.append(staleNote(age === null ? t("never_seen") : t("stale_since", { age: duration(age) })));
      if (offline) card.append(h("p", { class: "detail" }, t("no_connection")));
      if (d.error) card.append(h("p", { class: "detail" }, said("port", d.error)));
      return card;
    }
    const warnings = alerts(d.fields);
    if (warnings) {
      card.append(warnings);
      if (warnings.querySelector(".error, .alarm")) card.classList.add("alerting");
    }
    const list = h("dl", { class: "values" });
    for (const [label, format, range, toBar] of ROWS) {
      const field = d.fields[label];
      if (!field || (field.value === null && !field.text)) continue; // "---": not available, not zero
      const text = format(field);
      let bar = null;
      if (range && typeof field.value === "number") {
        const [min, max, tone] = range(page, field.value);
        bar = meter(t(label), toBar ? toBar(field.value) : field.value, min, max, text, tone);
      }
      list.append(row(label, t(label), text, bar));
    }
    card.append(list);
    if (d.history && d.history.length) card.append(daysChart(d));
    const meta = [t("last_block", { age: duration(d.age_seconds) }), d.firmware && t("firmware", { v: d.firmware })];
    card.append(h("p", { class: "meta" }, meta.filter(Boolean).join(" · ")));
    return card;
  }

  // A solar charger's own daily history (read over HEX): one bar per day, oldest on the left; a tap on a bar
  // shows that day's figures. The choice survives the refreshes.
  const chosenDay = {}; // device name → days_ago shown
  const minutes = (v) => withUnit(v, 0, "min");
  const DAY_ROWS = [
    ["yield_kwh", (v) => withUnit(v, 2, "kWh")], ["consumed_kwh", (v) => withUnit(v, 2, "kWh")],
    ["max_power_w", watts], ["battery_voltage_max_v", (v) => volts(v, 2)], ["battery_voltage_min_v", (v) => volts(v, 2)],
    ["max_battery_current_a", (v) => amps(v, 1)], ["max_pv_voltage_v", (v) => volts(v, 1)],
    ["bulk_min", minutes], ["absorption_min", minutes], ["float_min", minutes],
  ];
  const dayName = (n) => (n === 0 ? t("today") : n === 1 ? t("yesterday") : t("days_ago", { n }));

  function daysChart(d) {
    const known = (n) => d.history.some((day) => day.days_ago === n);
    const chosen = known(chosenDay[d.name]) ? chosenDay[d.name] : known(1) ? 1 : d.history[0].days_ago;
    const top = Math.max(0.01, ...d.history.map((day) => day.yield_kwh || 0));
    const bars = [...d.history].reverse().map((day) => {
      const amount = day.yield_kwh === null ? t("unavailable") : withUnit(day.yield_kwh, 2, "kWh");
      const fill = h("span", { class: "day-fill" });
      fill.style.height = `${((day.yield_kwh || 0) / top) * 100}%`;
      const bar = h("button", {
        type: "button", class: day.days_ago === chosen ? "day-bar chosen" : "day-bar", "data-days-ago": day.days_ago,
        "aria-pressed": String(day.days_ago === chosen), "aria-label": `${dayName(day.days_ago)}: ${amount}`, title: amount,
      }, fill);
      bar.addEventListener("click", () => {
        chosenDay[d.name] = day.days_ago;
        render();
        const again = document.querySelector(`[data-name="${CSS.escape(d.name)}"] .day-bar[data-days-ago="${day.days_ago}"]`);
        if (again) again.focus(); // the card was redrawn: keep the keyboard where it was
      });
      return bar;
    });
    const day = d.history.find((x) => x.days_ago === chosen);
    const rows = DAY_ROWS.filter(([key]) => day[key] !== null)
      .map(([key, format]) => h("div", { class: "day-row", "data-field": key }, h("dt", null, t(key)), h("dd", null, format(day[key]))));
    if (day.errors.some((code) => code)) {
      rows.push(h("div", { class: "day-row", "data-field": "errors" }, h("dt", null, t("day_errors")),
        h("dd", null, day.errors.filter((code) => code).join(", "))));
    }
    return h("section", { class: "days", "aria-label": t("yield_30d") },
      h("h3", null, t("yield_30d")),
      h("div", { class: "day-bars", role: "group", "aria-label": t("yield_30d") }, bars),
      h("p", { class: "day-title" }, dayName(chosen)),
      h("dl", { class: "day-figures", "data-days-ago": chosen }, rows));
  }

  function probeCard(p, index, page, offline, extraAge) {
    const id = `probe-${index}`;
    const fresh = p.value !== null && !offline;
    const card = h("article", {
      class: fresh ? "card probe" : "card probe stale", "data-name": p.name, "data-kind": "probe",
      "data-quantity": p.quantity, "data-up": String(fresh && p.up), "aria-labelledby": id,
    });
    card.append(h("header", null,
      h("div", null, h("h2", { id }, p.name), h("p", { class: "product" }, t(`probe_${p.quantity}`))),
      fresh ? null : badge(t("stale"), "stale")));
    if (!fresh) {
      const age = p.age_seconds === null ? null : p.age_seconds + extraAge;
      card.append(staleNote(age === null ? t("probe_never") : t("probe_stale", { age: duration(age) })));
      if (offline) card.append(h("p", { class: "detail" }, t("no_connection")));
    }
    if (p.error && !offline) {
      card.append(h("ul", { class: "alerts", "aria-label": t("alerts") },
        h("li", { class: "alert warning" }, said("probe_error", p.error))));
    }
    if (!fresh) return card;
    const list = h("dl", { class: "values" });
    const consumption = p.quantity === "power" ? p.value : p.power_watts;
    if (consumption !== null && consumption !== undefined) {
      const max = page.consumption_max;
      list.append(row("consumption", t("consumption"), watts(consumption),
        meter(t("consumption"), consumption, 0, max, watts(consumption), consumption > 0.9 * max ? "low" : "use")));
    }
    if (p.quantity === "temperature") list.append(row("temperature", t("temperature"), withUnit(p.value, 1, "°C")));
    if (p.quantity === "current") list.append(row("current", t("current"), amps(p.value, 2)));
    card.append(list);
    card.append(h("p", { class: "meta" }, t("last_reading", { age: duration(p.age_seconds) })));
    return card;
  }

  // A switched load: where it is and since when, why, the guard holding it back, a fault, a dry run.
  function actuatorCard(a, index, offline) {
    const id = `actuator-${index}`;
    const card = h("article", {
      class: offline ? "card actuator stale" : "card actuator", "data-name": a.name, "data-kind": "actuator",
      "data-position": a.position, "data-fault": String(a.fault), "aria-labelledby": id,
    });
    const state = t(`act_${a.position}`);
    card.append(h("header", null,
      h("div", null, h("h2", { id }, a.name), h("p", { class: "product" }, `${t("actuator")} · ${t(`act_type_${a.type}`)}`)),
      a.fault ? badge(t("fault"), "bad") : badge(state, a.position === "on" ? "" : "quiet"),
      a.dry_run ? badge(t("dry_run"), "quiet") : null));
    const time = new Date(a.since * 1000).toLocaleTimeString(lang === "fr" ? "fr-FR" : "en-GB",
      { hour: "2-digit", minute: "2-digit" });
    card.append(h("p", { class: "reason" }, t("act_since", { state, time, reason: a.reason })));
    const list = h("dl", { class: "values" });
    list.append(row("mode", t("act_mode"), t(a.mode ? `mode_${a.mode}` : "mode_none")));
    if (a.guard) list.append(row("guard", t("act_guard"), a.guard));
    if (a.error) list.append(row("error", t("act_error"), a.error));
    card.append(list);
    if (a.dry_run) card.append(h("p", { class: "meta" }, t("act_dry_note")));
    return card;
  }

  function forwarderBox(f, now) {
    const box = document.getElementById("forwarder");
    box.hidden = false;
    if (!f || typeof f !== "object") { // null: no emoncms section; undefined: the exporter cannot be reached
      box.className = "forwarder off";
      box.replaceChildren(h("p", null, t(f === undefined ? "fw_unknown" : "fw_off")));
      return;
    }
    const items = [];
    // Timestamps are Unix seconds; 0 or null means "never".
    const since = (ts) => (typeof ts === "number" && ts > 0 ? t("ago", { age: duration(now - ts) }) : t("never"));
    if (typeof f.queue_rows === "number") {
      items.push([t("backlog"), f.queue_rows === 0 ? t("no_rows") : f.queue_rows === 1 ? t("row") : t("rows", { n: num(f.queue_rows, 0) })]);
    }
    if ("last_success_timestamp" in f) items.push([t("last_send"), since(f.last_success_timestamp)]);
    if (typeof f.dead_letter_rows === "number" && f.dead_letter_rows > 0) items.push([t("rejected"), num(f.dead_letter_rows, 0)]);
    const error = typeof f.last_error === "string" && f.last_error ? f.last_error : null;
    if (error) items.push([t("last_error"), error]);
    const interval = typeof f.interval_seconds === "number" ? f.interval_seconds : 300;
    const oldest = typeof f.queue_oldest_row_timestamp === "number" ? now - f.queue_oldest_row_timestamp : 0;
    box.className = error || oldest > 3 * interval || f.dead_letter_rows > 0 ? "forwarder warn" : "forwarder";
    box.replaceChildren(h("h2", null, "emoncms"),
      h("dl", null, items.map(([k, v]) => h("div", null, h("dt", null, k), h("dd", null, v)))));
  }

  // The broker's state, as the forwarder's: hidden without an mqtt section (null) or while the exporter is away.
  function mqttBox(m) {
    const box = document.getElementById("mqtt");
    if (!m || typeof m !== "object") { box.hidden = true; return; }
    box.hidden = false;
    const items = [[t("mqtt_state"), m.connected ? t("mqtt_connected") : t("mqtt_away")]];
    if (typeof m.messages_dropped === "number" && m.messages_dropped > 0) items.push([t("mqtt_dropped"), num(m.messages_dropped, 0)]);
    if (!m.connected && typeof m.last_error === "string" && m.last_error) items.push([t("last_error"), m.last_error]);
    box.className = m.connected ? "forwarder" : "forwarder warn";
    box.replaceChildren(h("h2", null, `MQTT ${typeof m.url === "string" ? m.url : ""}`),
      h("dl", null, items.map(([k, v]) => h("div", null, h("dt", null, k), h("dd", null, v)))));
  }

  // --- the summary at the top, as PvMonit's "Divers" box: one gauge per value, coloured by thresholds ---------

  const TEMPERATURE_GAUGE = [0, 45]; // °C, PvMonit's gauge

  function socTone(v) { return v < 0.3 ? "low" : v < 0.5 ? "mid" : "good"; }

  function consumptionTone(watts, page) {
    const max = page.consumption_max;
    return watts > page.consumption_alarm_ratio * max ? "low" : watts > page.consumption_warning_ratio * max ? "mid" : "good";
  }

  function temperatureTone(c, page) {
    if (c <= page.temperature_alarm_low || c >= page.temperature_alarm_high) return "low";
    if (c <= page.temperature_warning_low || c >= page.temperature_warning_high) return "mid";
    return "good";
  }

  // The tiles that make sense for this installation: [key, label, value or null, text, gauge min, max, tone, source].
  function tiles(doc, page) {
    const s = doc.summary || {};
    const kinds = new Set(doc.devices.map((d) => d.kind));
    const quantities = new Set(doc.probes.map((p) => p.quantity));
    const chargers = s.chargers || 0;
    const list = [];
    if (kinds.has("bmv")) {
      list.push(["soc", t("SOC"), s.battery_soc, (v) => withUnit(v * 100, 1, "%"), 0, 100, socTone, (v) => v * 100]);
    }
    if (kinds.has("bmv") || kinds.has("mppt") || kinds.has("charger")) {
      list.push(["voltage", t("V"), s.battery_voltage, (v) => volts(v, 2), page.battery_voltage_min,
        page.battery_voltage_max, () => "volt"]);
    }
    if (chargers > 0) {
      list.push(["pv", chargers > 1 ? t("pv_total_of", { n: chargers }) : t("pv_total"), s.pv_power, watts, 0,
        page.pv_power_max * chargers, () => "sun"]);
    }
    if (s.consumption_probes > 0) { // only probes giving watts: a bare ammeter would leave it empty for ever
      list.push(["consumption", t("consumption"), s.consumption, watts, 0, page.consumption_max,
        (v) => consumptionTone(v, page)]);
    }
    if (quantities.has("temperature")) {
      list.push(["temperature", t("temperature"), s.temperature, (v) => withUnit(v, 1, "°C"), ...TEMPERATURE_GAUGE,
        (v) => temperatureTone(v, page)]);
    }
    return list;
  }

  function tile([key, label, value, format, min, max, tone, toGauge], offline) {
    const known = typeof value === "number" && !offline;
    const shade = known ? tone(value) : "none";
    const text = known ? format(value) : t("unavailable");
    return h("div", { class: `tile ${shade}`, "data-summary": key, "data-tone": shade },
      h("dt", null, label),
      h("dd", null, h("span", { class: known ? "value" : "value words" }, text),
        known ? meter(label, toGauge ? toGauge(value) : value, min, max, text, shade) : null));
  }

  // Small charts of the last 24 hours, drawn as SVG from the exporter's 5-minute points.
  const CHART_W = 240;
  const CHART_H = 64;

  function chartSeries(doc, page) {
    const history = doc.history || { columns: [], points: [] };
    const column = (name) => history.columns.indexOf(name);
    const has = (name) => history.points.some((row) => typeof row[column(name)] === "number");
    const list = [];
    if (has("battery_soc")) {
      list.push(["battery_soc", t("SOC"), 0, 100, (v) => withUnit(v, 0, "%"), 100, "good"]);
    } else if (has("battery_voltage")) {
      list.push(["battery_voltage", t("V"), page.battery_voltage_min, page.battery_voltage_max, (v) => volts(v, 1), 1, "volt"]);
    }
    const chargers = (doc.summary && doc.summary.chargers) || 1;
    if (has("pv_power")) list.push(["pv_power", t("pv_total"), 0, page.pv_power_max * chargers, watts, 1, "sun"]);
    if (has("consumption")) list.push(["consumption", t("consumption"), 0, page.consumption_max, watts, 1, "use"]);
    return list.map(([name, title, lo, hi, format, scale, tone]) => {
      const index = column(name);
      const points = history.points.filter((row) => typeof row[index] === "number")
        .map((row) => [row[0], row[index] * scale]);
      return { name, title, lo, hi, format, tone, points, interval: history.interval_seconds || 300 };
    });
  }

  function chart(series, now) {
    const { name, title, format, tone, points, interval } = series;
    const values = points.map(([, v]) => v);
    const lo = Math.min(series.lo, ...values);
    const hi = Math.max(series.hi, ...values);
    const x = (time) => ((time - (now - 86400)) / 86400) * CHART_W;
    const y = (v) => CHART_H - 2 - ((v - lo) / (hi - lo || 1)) * (CHART_H - 4);
    // Points closer than two slots are joined; a point with no neighbour is drawn as a dot (a zero-length
    // segment with round caps: SVG circles would be stretched by the chart's free aspect ratio).
    let path = "";
    let dots = "";
    points.forEach(([time, v], i) => {
      const near = (other) => other !== undefined && Math.abs(other[0] - time) <= 2 * interval;
      const at = `${x(time).toFixed(1)} ${y(v).toFixed(1)}`;
      path += `${near(points[i - 1]) ? "L" : "M"}${at}`;
      if (!near(points[i - 1]) && !near(points[i + 1])) dots += `M${at}L${at}`;
    });
    const last = values[values.length - 1];
    const svgNs = "http://www.w3.org/2000/svg";
    const svg = document.createElementNS(svgNs, "svg");
    const summaryText = t("chart_range", { title, min: format(Math.min(...values)), max: format(Math.max(...values)),
      last: format(last) });
    for (const [k, v] of Object.entries({ viewBox: `0 0 ${CHART_W} ${CHART_H}`, preserveAspectRatio: "none",
      role: "img", "aria-label": summaryText, class: "spark" })) svg.setAttribute(k, v);
    const line = document.createElementNS(svgNs, "path");
    line.setAttribute("d", path);
    line.setAttribute("class", `line ${tone}`);
    line.setAttribute("vector-effect", "non-scaling-stroke");
    svg.append(line);
    if (dots) {
      const dot = document.createElementNS(svgNs, "path");
      dot.setAttribute("d", dots);
      dot.setAttribute("class", `line dots ${tone}`);
      dot.setAttribute("vector-effect", "non-scaling-stroke");
      svg.append(dot);
    }
    return h("figure", { class: "chart", "data-series": name, "data-points": points.length },
      h("figcaption", null, h("span", null, title), h("span", { class: "chart-last" }, format(last))),
      svg,
      h("div", { class: "chart-axis", "aria-hidden": "true" },
        h("span", null, t("hours_ago")), h("span", null, `${format(Math.min(...values))} – ${format(Math.max(...values))}`),
        h("span", null, t("now"))));
  }

  function summarySection(doc, page, offline) {
    const section = document.getElementById("summary");
    const list = tiles(doc, page);
    section.hidden = !list.length;
    document.getElementById("tiles").replaceChildren(...list.map((item) => tile(item, offline)));
    const charts = offline ? [] : chartSeries(doc, page).map((series) => chart(series, doc.time));
    document.getElementById("charts").replaceChildren(
      ...(charts.length ? [h("h3", null, t("last_24h")), ...charts] : []),
      ...(list.length ? [h("p", { class: "meta history-note" }, t("history_note"))] : []));
  }

  function render() {
    const main = document.getElementById("cards");
    const status = document.getElementById("status");
    if (!lastDoc) {
      status.dataset.state = failing ? "offline" : "loading";
      status.textContent = failing ? t("offline_never") : t("loading");
      return;
    }
    const doc = lastDoc;
    const extraAge = failing ? (performance.now() - lastOkAt) / 1000 : 0;
    const page = doc.page;
    const cards = [
      ...doc.devices.map((d, i) => deviceCard(d, i, page, failing, extraAge)),
      ...doc.probes.map((p, i) => probeCard(p, i, page, failing, extraAge)),
      ...(doc.control ? doc.control.actuators.map((a, i) => actuatorCard(a, i, failing)) : []),
    ];
    main.replaceChildren(...(cards.length ? cards : [h("p", { class: "notice" }, t("nothing"))]));
    main.setAttribute("aria-busy", "false");
    summarySection(doc, page, failing);
    forwarderBox(failing ? undefined : doc.forwarder, doc.time);
    mqttBox(failing ? undefined : doc.mqtt);
    announce(failing ? t("offline_never") : t("live"));
    status.dataset.state = failing ? "offline" : "live";
    status.textContent = failing ? t("offline", { age: duration(extraAge) })
      : t("updated", { time: new Date(doc.time * 1000).toLocaleTimeString(lang === "fr" ? "fr-FR" : "en-GB") });
    document.getElementById("version").textContent = `pvmonit-exporter ${doc.version}`;
  }

  // Screen readers hear when the connection is lost or back, not every refresh.
  let announced = null;
  function announce(text) {
    if (text === announced) return;
    announced = text;
    document.getElementById("announce").textContent = text;
  }

  function applyLanguage() {
    document.documentElement.lang = lang;
    document.title = t("title");
    for (const node of document.querySelectorAll("[data-i18n]")) node.textContent = t(node.dataset.i18n);
    for (const node of document.querySelectorAll("[data-i18n-label]")) node.setAttribute("aria-label", t(node.dataset.i18nLabel));
    for (const button of document.querySelectorAll("button[data-lang]")) {
      button.setAttribute("aria-pressed", String(button.dataset.lang === lang));
    }
    render();
  }

  async function refresh() {
    clearTimeout(timer);
    if (document.hidden) { // a phone in a pocket does not need updates; resume when shown
      waitingForVisible = true;
      return;
    }
    const abort = new AbortController();
    const stop = setTimeout(() => abort.abort(), TIMEOUT_MS);
    try {
      const response = await fetch("api/state", { cache: "no-store", signal: abort.signal });
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
      const doc = await response.json();
      lastDoc = doc;
      lastOkAt = performance.now();
      failing = false;
    } catch (e) {
      failing = true; // shown as such: old numbers must never look current
    } finally {
      clearTimeout(stop);
    }
    render();
    timer = setTimeout(refresh, REFRESH_MS);
  }

  document.addEventListener("visibilitychange", () => {
    if (!document.hidden && waitingForVisible) {
      waitingForVisible = false;
      refresh();
    }
  });

  for (const button of document.querySelectorAll("button[data-lang]")) {
    button.addEventListener("click", () => {
      lang = button.dataset.lang;
      try { localStorage.setItem(STORE_KEY, lang); } catch (e) { /* not remembered, still switched */ }
      applyLanguage();
    });
  }

  applyLanguage();
  refresh();
})();
