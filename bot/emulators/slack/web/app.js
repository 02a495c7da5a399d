/* The local Slack page: renders what FakeSlack recorded for one person and sends what they do back to it.
 *
 * State arrives as Server-Sent Events from /_page/events (one JSON snapshot per change). Actions are POSTs to
 * /_page/command, /_page/click, /_page/submit, /_page/close and /_page/home; FakeSlack turns each into the
 * signed payload Slack would send to the bot. Nothing here talks to anything but this server.
 *
 * Safety: every string from the bot is untrusted. Plain text goes in with textContent; mrkdwn is escaped
 * first and only then given the few tags the renderer adds (b, i, s, code, pre, a with an http(s)/mailto
 * href, span for mentions). No other path puts markup into the page.
 */
"use strict";

(function () {
  const params = new URLSearchParams(location.search);
  const S = {
    user: params.get("user") || "",
    channel: params.get("channel") || "C0GENERAL",
    view: params.get("view") === "home" ? "home" : "channel", // "channel" or "home"
    homeTab: "home",
    thread: null, // ts of the open thread's parent
    snap: null,
    local: {}, // view id -> block id -> action id -> value typed so far
    errors: {}, // view id -> block id -> message (from a response_action: errors, or a required input left empty)
    errorsHash: {}, // view id -> the view's hash when those errors were shown: a redraw by the app clears them
    modalProblem: {}, // view id -> text shown in the modal's footer
    notes: [], // messages the page itself shows ("/pipeline failed with the error …")
    dismissed: new Set(),
    history: [],
    historyAt: -1,
    source: null,
    renderedModal: "",
  };

  const $ = (id) => document.getElementById(id);

  // -- text ------------------------------------------------------------------------------------------------

  function escapeHtml(text) {
    return String(text)
      .replace(/&/g, "&amp;")
      .replace(/</g, "&lt;")
      .replace(/>/g, "&gt;")
      .replace(/"/g, "&quot;")
      .replace(/'/g, "&#39;");
  }

  // Slack's own escapes (&amp; &lt; &gt;) back to characters; the result is escaped again before display.
  function unescapeSlack(text) {
    return String(text).replace(/&lt;/g, "<").replace(/&gt;/g, ">").replace(/&amp;/g, "&");
  }

  const EMOJI = {
    white_check_mark: "✅", heavy_check_mark: "✔️", x: "❌", warning: "⚠️", hourglass: "⌛",
    hourglass_flowing_sand: "⏳", rocket: "🚀", eyes: "👀", repeat: "🔁", no_bell: "🔕", bell: "🔔",
    arrow_forward: "▶️", stop_button: "⏹️", grey_question: "❔", question: "❓", tada: "🎉", fire: "🔥",
    rotating_light: "🚨", red_circle: "🔴", large_green_circle: "🟢", information_source: "ℹ️",
    hammer_and_wrench: "🛠️", clock1: "🕐", calendar: "📅", chart_with_upwards_trend: "📈",
    chart_with_downwards_trend: "📉", leftwards_arrow_with_hook: "↩️", arrow_right_hook: "↪️", zzz: "💤",
  };

  function emojify(text) {
    return String(text).replace(/:([a-z0-9_+-]+):/g, (whole, name) => EMOJI[name] || whole);
  }

  function userName(id) {
    const user = S.snap && S.snap.users.find((u) => u.id === id);
    return user ? user.display_name || user.name : id;
  }

  function groupHandle(id) {
    const group = S.snap && S.snap.groups.find((g) => g.id === id);
    return group ? group.handle : id;
  }

  function channelName(id) {
    const channel = S.snap && S.snap.channels.find((c) => c.id === id);
    return channel ? channel.name : id;
  }

  // One <…> control sequence of mrkdwn, as safe HTML.
  function control(inner) {
    const bar = inner.indexOf("|");
    const target = bar >= 0 ? inner.slice(0, bar) : inner;
    const label = bar >= 0 ? inner.slice(bar + 1) : "";
    if (target.startsWith("@")) {
      const id = target.slice(1);
      return `<span class="mention" data-user="${escapeHtml(id)}">@${escapeHtml(userName(id))}</span>`;
    }
    if (target.startsWith("#")) {
      const id = target.slice(1);
      const name = label ? unescapeSlack(label) : channelName(id);
      return `<span class="channel-ref" data-channel="${escapeHtml(id)}">#${escapeHtml(name)}</span>`;
    }
    if (target.startsWith("!subteam^")) {
      const id = target.slice("!subteam^".length);
      return `<span class="mention" data-group="${escapeHtml(id)}">@${escapeHtml(groupHandle(id))}</span>`;
    }
    if (target.startsWith("!date^")) {
      const parts = target.split("^");
      const seconds = Number(parts[1]);
      const when = Number.isFinite(seconds) ? new Date(seconds * 1000).toLocaleString() : "";
      const shown = label ? unescapeSlack(label) : when;
      return `<span class="date" title="${escapeHtml(when)}">${escapeHtml(shown)}</span>`;
    }
    if (target === "!here" || target === "!channel" || target === "!everyone") {
      return `<span class="mention loud">@${escapeHtml(target.slice(1))}</span>`;
    }
    if (target.startsWith("!")) {
      return escapeHtml(label ? unescapeSlack(label) : target.slice(1));
    }
    const url = unescapeSlack(target);
    if (/^(https?:\/\/|mailto:)/i.test(url)) {
      const text = label ? unescapeSlack(label) : url;
      return `<a href="${escapeHtml(url)}" target="_blank" rel="noopener noreferrer">${escapeHtml(text)}</a>`;
    }
    return escapeHtml(unescapeSlack(`<${inner}>`)); // not a link Slack would make: shown as typed
  }

  // Slack mrkdwn to HTML: escape first, then add formatting. Pieces already rendered (code, links, mentions)
  // wait in `holes` behind markers the input cannot contain.
  function mrkdwn(source) {
    const holes = [];
    const hole = (html) => `\u0001${holes.push(html) - 1}\u0002`;
    let s = String(source).replace(/[\u0001\u0002]/g, "");
    s = s.replace(/```([\s\S]*?)```/g, (_, body) => hole(`<pre class="mk-pre">${escapeHtml(unescapeSlack(body.replace(/^\n/, "")))}</pre>`));
    s = s.replace(/`([^`\n]+)`/g, (_, body) => hole(`<code>${escapeHtml(unescapeSlack(body))}</code>`));
    s = s.replace(/<([^<>\n]*)>/g, (_, inner) => hole(control(inner)));
    s = escapeHtml(unescapeSlack(s));
    s = emojify(s);
    const edge = "(^|[\\s(\\[{\"'\\u0002.,;:!?/-])";
    const after = "(?=$|[\\s)\\]}\"'\\u0001.,;:!?/-])";
    s = s.replace(new RegExp(`${edge}\\*([^*\\s](?:[^*\\n]*?[^*\\s])?)\\*${after}`, "g"), "$1<b>$2</b>");
    s = s.replace(new RegExp(`${edge}_([^_\\s](?:[^_\\n]*?[^_\\s])?)_${after}`, "g"), "$1<i>$2</i>");
    s = s.replace(new RegExp(`${edge}~([^~\\s](?:[^~\\n]*?[^~\\s])?)~${after}`, "g"), "$1<s>$2</s>");
    s = s.split("\n").map((line) => (line.startsWith("&gt; ") ? `<span class="mk-quote">${line.slice(5)}</span>` : line)).join("<br>");
    for (let round = 0; round < 3 && s.includes("\u0001"); round += 1) {
      s = s.replace(/\u0001(\d+)\u0002/g, (_, i) => holes[Number(i)]);
    }
    return s;
  }

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = text;
    return node;
  }

  // A text object (plain_text or mrkdwn) into a new element.
  function textObject(object, className, tag) {
    const node = el(tag || "div", className);
    if (!object) return node;
    if (object.type === "mrkdwn") {
      node.innerHTML = mrkdwn(object.text || ""); // escaped by mrkdwn() before any tag is added
    } else {
      node.textContent = emojify(object.text || "");
    }
    return node;
  }

  function plain(object) {
    return object ? emojify(object.text || "") : "";
  }

  function timeOf(ts) {
    const date = new Date(Number(ts) * 1000);
    return date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" });
  }

  // -- talking to the server --------------------------------------------------------------------------------

  async function post(path, body) {
    let answer;
    try {
      const response = await fetch(path, {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ user: S.user, ...body }),
      });
      answer = await response.json();
    } catch (error) {
      answer = { ok: false, error: "the page cannot reach the stand-in: is pipeline-bot demo still running?" };
    }
    return answer;
  }

  function connect() {
    if (S.source) S.source.close();
    const source = new EventSource(`/_page/events?user=${encodeURIComponent(S.user)}`);
    S.source = source;
    const live = $("live");
    source.addEventListener("open", () => {
      live.textContent = "live";
      live.className = "live on";
    });
    source.addEventListener("error", () => {
      live.textContent = "reconnecting…";
      live.className = "live off";
    });
    source.addEventListener("state", (event) => {
      S.snap = JSON.parse(event.data);
      if (!S.user) S.user = S.snap.me;
      render();
    });
  }

  function note(channel, text, threadTs) {
    S.notes.push({ channel, ts: String(Date.now() / 1000), text, thread_ts: threadTs || null, note: true });
    render();
  }

  function saveUrl() {
    const query = new URLSearchParams();
    if (S.user) query.set("user", S.user);
    query.set("channel", S.channel);
    if (S.view === "home") query.set("view", "home");
    history.replaceState(null, "", `?${query}`);
  }

  // -- acting ------------------------------------------------------------------------------------------------

  async function runCommand(text) {
    const channel = S.view === "home" ? dmChannel() : S.channel;
    if (!channel) return;
    if (!text.startsWith("/")) {
      note(channel, "This stand-in only understands slash commands: try /pipeline help");
      return;
    }
    const answer = await post("/_page/command", { channel, text });
    const name = text.split(/\s+/)[0];
    if (!answer.ok) {
      const error = answer.error || (answer.status ? `http_status_${answer.status}` : "dispatch_failed");
      note(channel, `${name} failed with the error "${error}"`);
    } else if (answer.elapsed >= 3) {
      note(channel, `${name} failed with the error "operation_timeout" (the app took ${answer.elapsed}s; Slack waits 3s)`);
    }
  }

  function confirmFirst(element) {
    if (!element.confirm) return Promise.resolve(true);
    const c = element.confirm;
    return new Promise((resolve) => {
      const root = $("dialog-root");
      const overlay = el("div", "overlay dialog-overlay");
      const dialog = el("div", "dialog");
      dialog.setAttribute("role", "alertdialog");
      dialog.setAttribute("aria-modal", "true");
      dialog.setAttribute("aria-label", plain(c.title) || "Are you sure?");
      dialog.append(el("h2", "", plain(c.title) || "Are you sure?"));
      dialog.append(textObject(c.text, "dialog-text bk-text"));
      const buttons = el("div", "dialog-buttons");
      const deny = el("button", "bk-btn", plain(c.deny) || "Cancel");
      deny.type = "button";
      const yes = el("button", `bk-btn ${c.style === "danger" ? "danger filled" : "primary"}`, plain(c.confirm) || "Yes");
      yes.type = "button";
      const done = (answer) => {
        overlay.remove();
        document.removeEventListener("keydown", onKey, true);
        resolve(answer);
      };
      const onKey = (event) => {
        if (event.key === "Escape") {
          event.stopPropagation();
          done(false);
        }
      };
      deny.addEventListener("click", () => done(false));
      yes.addEventListener("click", () => done(true));
      document.addEventListener("keydown", onKey, true);
      buttons.append(deny, yes);
      dialog.append(buttons);
      overlay.append(dialog);
      root.append(overlay);
      yes.focus();
    });
  }

  async function interact(ctx, blockId, element, value, node) {
    if (!(await confirmFirst(element))) {
      if (node && node.tagName === "SELECT") node.selectedIndex = 0;
      return;
    }
    if (element.type === "button" && element.url) window.open(element.url, "_blank", "noopener,noreferrer");
    if (node) node.classList.add("busy");
    const body = { where: ctx.where, action_id: element.action_id, block_id: blockId };
    if (value !== undefined) body.value = value;
    if (ctx.where === "view") {
      body.view_id = ctx.viewId;
      body.values = S.local[ctx.viewId] || {};
    } else {
      body.channel = ctx.channel;
      body.ts = ctx.ts;
    }
    const answer = await post("/_page/click", body);
    if (node) node.classList.remove("busy");
    if (!answer.ok && ctx.where !== "view") {
      note(ctx.channel, `That did not reach the app: ${answer.error || `HTTP ${answer.status}`}`, ctx.threadTs);
    } else if (!answer.ok) {
      S.modalProblem[ctx.viewId] = `That did not reach the app: ${answer.error || `HTTP ${answer.status}`}`;
      S.renderedModal = "";
      render();
    }
  }

  function remember(viewId, blockId, actionId, value, node) {
    const byBlock = (S.local[viewId] = S.local[viewId] || {});
    (byBlock[blockId] = byBlock[blockId] || {})[actionId] = value;
    // as in Slack, changing an input clears the error shown under it
    const errors = S.errors[viewId];
    if (errors && errors[blockId]) {
      delete errors[blockId];
      const holder = node && node.closest(".bk-input-block");
      if (holder) {
        holder.classList.remove("invalid");
        holder.querySelectorAll(".bk-error").forEach((e) => e.remove());
      }
      const shown = S.snap && S.snap.modals.find((v) => v.id === viewId);
      if (shown && S.renderedModal.startsWith(`${viewId}:`)) S.renderedModal = modalSig(shown); // no redraw needed
    }
  }

  async function submitModal(view) {
    const values = collect(view);
    // as Slack's client does: a required input left empty is flagged here and nothing is sent
    const missing = {};
    view.blocks.forEach((b) => {
      if (b.type !== "input" || b.optional || !b.element) return;
      const value = (values[b.block_id] || {})[b.element.action_id];
      if (value === null || value === undefined || (Array.isArray(value) && !value.length)) {
        missing[b.block_id] = "Please complete this required field.";
      }
    });
    if (Object.keys(missing).length) {
      S.errors[view.id] = missing;
      S.errorsHash[view.id] = view.hash;
      S.renderedModal = "";
      render();
      return;
    }
    const button = document.querySelector(".modal-submit");
    if (button) button.classList.add("busy");
    const answer = await post("/_page/submit", { view_id: view.id, values });
    if (button) button.classList.remove("busy");
    const body = answer.body || {};
    S.modalProblem[view.id] = "";
    if (!answer.ok) {
      S.modalProblem[view.id] = answer.status ? "We had some trouble connecting. Try again?" : answer.error;
    } else if (body.response_action === "errors") {
      S.errors[view.id] = body.errors || {};
      S.errorsHash[view.id] = view.hash;
    } else {
      S.errors[view.id] = {};
    }
    S.renderedModal = "";
    render();
  }

  // The current value of every input of the modal, read from the page.
  function collect(view) {
    const values = {};
    document.querySelectorAll(".modal [data-action-id]").forEach((node) => {
      const blockId = node.dataset.blockId;
      const actionId = node.dataset.actionId;
      (values[blockId] = values[blockId] || {})[actionId] = readValue(node);
    });
    return values;
  }

  function readValue(node) {
    if (node.classList.contains("bk-choices")) {
      const picked = [...node.querySelectorAll("input:checked")].map((i) => i.value);
      return node.dataset.kind === "checkboxes" ? picked : picked[0] || null;
    }
    if (node.multiple) return [...node.selectedOptions].map((o) => o.value);
    return node.value === "" ? null : node.value;
  }

  async function closeModal(view, clear) {
    await post("/_page/close", { view_id: view.id, clear: Boolean(clear) });
  }

  async function openHome() {
    S.view = "home";
    S.homeTab = "home";
    S.thread = null;
    saveUrl();
    render();
    const answer = await post("/_page/home", {});
    if (!answer.ok) note(dmChannel() || S.channel, `The Home tab did not reach the app: ${answer.error || answer.status}`);
  }

  function dmChannel() {
    const dm = S.snap && S.snap.channels.find((c) => c.im);
    return dm ? dm.id : null;
  }

  // -- Block Kit ----------------------------------------------------------------------------------------------

  function initialValue(ctx, blockId, element) {
    if (ctx.where === "view") {
      const local = ((S.local[ctx.viewId] || {})[blockId] || {})[element.action_id];
      if (local !== undefined) return local;
      const remembered = ((ctx.values || {})[blockId] || {})[element.action_id];
      if (remembered) {
        const v = remembered;
        if (v.selected_option) return v.selected_option.value;
        if (v.selected_options) return v.selected_options.map((o) => o.value);
        for (const key of ["selected_date", "selected_time", "selected_user", "selected_channel", "selected_conversation", "value"]) {
          if (v[key] !== undefined && v[key] !== null) return v[key];
        }
      }
    }
    if (element.initial_option) return element.initial_option.value;
    if (element.initial_options) return element.initial_options.map((o) => o.value);
    return element.initial_value ?? element.initial_date ?? element.initial_time ?? element.initial_user ??
      element.initial_channel ?? element.initial_conversation ?? null;
  }

  function optionNode(option) {
    const node = el("option", "", plain(option.text));
    node.value = option.value;
    if (option.description) node.title = plain(option.description);
    return node;
  }

  function selectNode(element, choices, placeholder) {
    const select = el("select", "bk-select");
    const empty = el("option", "", placeholder);
    empty.value = "";
    select.append(empty);
    if (choices) {
      choices.forEach((o) => select.append(o));
    } else if (element.option_groups) {
      element.option_groups.forEach((group) => {
        const node = el("optgroup");
        node.label = plain(group.label);
        (group.options || []).forEach((o) => node.append(optionNode(o)));
        select.append(node);
      });
    } else {
      (element.options || []).forEach((o) => select.append(optionNode(o)));
    }
    return select;
  }

  function peopleOptions() {
    return S.snap.users.filter((u) => !u.is_bot).map((u) => optionNode({ text: { text: u.real_name }, value: u.id }));
  }

  function channelOptions() {
    return S.snap.channels.filter((c) => !c.im).map((c) => optionNode({ text: { text: `#${c.name}` }, value: c.id }));
  }

  // One interactive element. In an input block of a modal it only records what is typed (submitted later) unless
  // the block dispatches actions; anywhere else it acts at once, as in Slack.
  function element(ctx, blockId, element, inInput, dispatch) {
    const kind = element.type;
    const act = (value, node) => interact(ctx, blockId, element, value, node);
    const keep = (node) => {
      const value = readValue(node);
      if (ctx.where === "view") remember(ctx.viewId, blockId, element.action_id, value, node);
      if (!inInput || dispatch) act(value, node);
    };
    let node;
    if (kind === "button") {
      const style = element.style === "primary" ? " primary" : element.style === "danger" ? " danger" : "";
      node = el("button", `bk-btn${style}${element.url ? " link" : ""}`, plain(element.text));
      node.type = "button";
      if (element.url) node.title = element.url;
      node.addEventListener("click", () => act(undefined, node));
      return node;
    }
    if (kind === "static_select" || kind === "external_select" || kind === "users_select" ||
        kind === "conversations_select" || kind === "channels_select" || kind === "multi_static_select" ||
        kind === "multi_users_select" || kind === "multi_conversations_select" || kind === "multi_channels_select") {
      let choices = null;
      if (kind.includes("users")) choices = peopleOptions();
      if (kind.includes("conversations") || kind.includes("channels")) choices = channelOptions();
      node = selectNode(element, choices, plain(element.placeholder) || "Select an item");
      if (kind.startsWith("multi_")) {
        node.multiple = true;
        node.firstChild.remove();
      }
      const initial = initialValue(ctx, blockId, element);
      if (Array.isArray(initial)) {
        [...node.options].forEach((o) => { o.selected = initial.includes(o.value); });
      } else if (initial !== null && initial !== undefined) {
        node.value = initial;
      }
      node.addEventListener("change", () => keep(node));
    } else if (kind === "overflow") {
      node = selectNode(element, null, "⋯");
      node.classList.add("bk-overflow");
      node.setAttribute("aria-label", "More actions");
      node.addEventListener("change", () => {
        const value = node.value;
        node.selectedIndex = 0;
        const picked = (element.options || []).find((o) => o.value === value);
        if (picked && picked.url) window.open(picked.url, "_blank", "noopener,noreferrer");
        act(value, node);
      });
      return node;
    } else if (kind === "datepicker" || kind === "timepicker") {
      node = el("input", "bk-date");
      node.type = kind === "datepicker" ? "date" : "time";
      const initial = initialValue(ctx, blockId, element);
      if (initial) node.value = initial;
      node.addEventListener("change", () => keep(node));
    } else if (kind === "plain_text_input" || kind === "number_input" || kind === "email_text_input" || kind === "url_text_input") {
      node = el(element.multiline ? "textarea" : "input", "bk-input");
      if (!element.multiline) node.type = { number_input: "number", email_text_input: "email", url_text_input: "url" }[kind] || "text";
      if (element.placeholder) node.placeholder = plain(element.placeholder);
      if (element.max_length) node.maxLength = element.max_length;
      const initial = initialValue(ctx, blockId, element);
      if (initial !== null && initial !== undefined) node.value = initial;
      node.addEventListener("input", () => {
        if (ctx.where === "view") remember(ctx.viewId, blockId, element.action_id, readValue(node), node);
      });
      node.addEventListener("change", () => {
        if (!inInput || dispatch) act(readValue(node), node);
      });
    } else if (kind === "checkboxes" || kind === "radio_buttons") {
      node = el("div", "bk-choices");
      node.dataset.kind = kind;
      const initial = initialValue(ctx, blockId, element);
      const name = `${blockId}-${element.action_id}-${Math.random().toString(36).slice(2)}`;
      (element.options || []).forEach((option) => {
        const label = el("label");
        const input = el("input");
        input.type = kind === "checkboxes" ? "checkbox" : "radio";
        input.name = name;
        input.value = option.value;
        input.checked = Array.isArray(initial) ? initial.includes(option.value) : initial === option.value;
        input.addEventListener("change", () => keep(node));
        label.append(input, document.createTextNode(` ${plain(option.text)}`));
        node.append(label);
      });
    } else if (kind === "image") {
      return imageNode(element);
    } else {
      return el("span", "bk-unsupported", `[${kind} is not shown by this stand-in]`);
    }
    node.dataset.blockId = blockId;
    node.dataset.actionId = element.action_id;
    if (inInput) node.classList.add("bk-field");
    return node;
  }

  function imageNode(object) {
    const url = String(object.image_url || "");
    if (/^https?:\/\//i.test(url) && (url.startsWith(location.origin) || location.hostname === "")) {
      const img = el("img");
      img.src = url;
      img.alt = object.alt_text || "";
      return img;
    }
    return el("span", "alt", `[image: ${object.alt_text || "no description"}]`);
  }

  function block(ctx, block) {
    const blockId = block.block_id || "";
    const type = block.type;
    if (type === "header") return textObject(block.text, "bk-header");
    if (type === "divider") return el("hr", "bk-divider");
    if (type === "section") {
      const node = el("div", "bk-section");
      const main = el("div", "bk-section-main");
      if (block.text) main.append(textObject(block.text, "bk-text"));
      if (block.fields) {
        const fields = el("div", "bk-fields");
        block.fields.forEach((f) => fields.append(textObject(f, "bk-text")));
        main.append(fields);
      }
      node.append(main);
      if (block.accessory) {
        const accessory = block.accessory.type === "image" ? imageNode(block.accessory) : element(ctx, blockId, block.accessory, false, false);
        node.append(accessory);
      }
      return node;
    }
    if (type === "context") {
      const node = el("div", "bk-context");
      (block.elements || []).forEach((e) => node.append(e.type === "image" ? imageNode(e) : textObject(e, "bk-text", "span")));
      return node;
    }
    if (type === "actions") {
      const node = el("div", "bk-actions");
      (block.elements || []).forEach((e) => node.append(element(ctx, blockId, e, false, false)));
      return node;
    }
    if (type === "input") {
      const node = el("div", "bk-input-block");
      const error = ((S.errors[ctx.viewId] || {})[blockId]) || "";
      if (error) node.classList.add("invalid");
      const label = el("label", "bk-label", plain(block.label));
      if (block.optional) label.append(el("span", "bk-optional", " (optional)"));
      node.append(label);
      const dispatch = Boolean(block.dispatch_action);
      const field = element(ctx, blockId, block.element || {}, true, dispatch);
      const id = `in-${ctx.viewId || "m"}-${blockId}`;
      field.id = id;
      label.htmlFor = id;
      node.append(field);
      if (error) node.append(el("div", "bk-error", error));
      if (block.hint) node.append(el("div", "bk-hint", plain(block.hint)));
      return node;
    }
    if (type === "image") {
      const node = el("div", "bk-image");
      if (block.title) node.append(el("div", "bk-text", plain(block.title)));
      node.append(imageNode(block));
      return node;
    }
    if (type === "rich_text") {
      return el("div", "bk-text", richText(block));
    }
    return el("div", "bk-unsupported", `[${type} block is not shown by this stand-in]`);
  }

  function richText(node) {
    if (!node || typeof node !== "object") return "";
    if (typeof node.text === "string") return node.text;
    if (node.type === "user") return `@${userName(node.user_id)}`;
    if (node.type === "channel") return `#${channelName(node.channel_id)}`;
    if (node.type === "link") return node.text || node.url || "";
    return (node.elements || []).map(richText).join(node.type === "rich_text_list" ? "\n" : "");
  }

  function blocks(ctx, list, fallback) {
    const node = el("div", "blocks");
    if (!list || !list.length) {
      node.append(textObject({ type: "mrkdwn", text: fallback || "" }, "bk-text"));
      return node;
    }
    list.forEach((b) => {
      const child = block(ctx, b);
      child.dataset.blockType = b.type;
      node.append(child);
    });
    return node;
  }

  // -- rendering ------------------------------------------------------------------------------------------

  function messageNode(message, channel, where, inThread) {
    const ephemeral = where === "ephemeral";
    const node = el("div", `msg${ephemeral ? " ephemeral" : ""}`);
    node.dataset.ts = message.ts;
    node.dataset.kind = message.note ? "note" : where;
    node.append(el("div", "avatar", "PB"));
    const body = el("div", "msg-body");
    const head = el("div", "msg-head");
    head.append(el("span", "author", S.snap.bot.name), el("span", "app-badge", "APP"), el("span", "time", timeOf(message.ts)));
    if (message.edited) head.append(el("span", "edited", "(edited)"));
    body.append(head);
    if (ephemeral) {
      const only = el("div", "only-you", "Only visible to you");
      const dismiss = el("button", "link-button", "Dismiss");
      dismiss.type = "button";
      dismiss.addEventListener("click", () => {
        S.dismissed.add(`${message.channel}:${message.ts}`);
        render();
      });
      only.append(dismiss);
      body.append(only);
    }
    const ctx = { where, channel, ts: message.ts, threadTs: message.thread_ts };
    body.append(message.note ? textObject({ type: "plain_text", text: message.text }, "bk-text") : blocks(ctx, message.blocks, message.text));
    if (!inThread && message.reply_count) {
      const replies = el("button", "replies", `${message.reply_count} ${message.reply_count === 1 ? "reply" : "replies"}`);
      replies.type = "button";
      replies.addEventListener("click", () => {
        S.thread = message.ts;
        render();
      });
      body.append(replies);
    }
    node.append(body);
    return node;
  }

  // Keep the nodes of unchanged messages: a click or an open menu is not lost when another message changes.
  function sync(container, items) {
    const cache = container._cache || (container._cache = new Map());
    const keep = new Set();
    const nodes = items.map((item) => {
      keep.add(item.key);
      const cached = cache.get(item.key);
      if (cached && cached.sig === item.sig) return cached.node;
      const node = item.build();
      if (cached) node.classList.add("flash");
      cache.set(item.key, { sig: item.sig, node });
      return node;
    });
    for (const key of [...cache.keys()]) if (!keep.has(key)) cache.delete(key);
    nodes.forEach((node, i) => {
      if (container.children[i] !== node) container.insertBefore(node, container.children[i] || null);
    });
    while (container.children.length > nodes.length) container.lastElementChild.remove();
  }

  function nearBottom(node) {
    return node.scrollHeight - node.scrollTop - node.clientHeight < 120;
  }

  function channelItems(channelId, threadTs) {
    const snap = S.snap;
    const items = [];
    const stored = (snap.messages[channelId] || []);
    const ephemerals = snap.ephemerals.concat(S.notes).filter((e) => e.channel === channelId &&
      !S.dismissed.has(`${e.channel}:${e.ts}`));
    let shown;
    let floating;
    if (threadTs) {
      shown = stored.filter((m) => m.ts === threadTs || m.thread_ts === threadTs);
      floating = ephemerals.filter((e) => e.thread_ts === threadTs);
    } else {
      shown = stored.filter((m) => !m.thread_ts || m.thread_ts === m.ts || m.broadcast);
      floating = ephemerals.filter((e) => !e.thread_ts || !stored.some((m) => m.ts === e.thread_ts));
    }
    shown.forEach((m) => items.push({ ts: m.ts, key: `m:${m.ts}`, sig: JSON.stringify(m), build: () => messageNode(m, channelId, "message", Boolean(threadTs)) }));
    floating.forEach((e) => items.push({ ts: e.ts, key: `e:${e.ts}`, sig: JSON.stringify(e), build: () => messageNode(e, channelId, "ephemeral", Boolean(threadTs)) }));
    items.sort((a, b) => Number(a.ts) - Number(b.ts));
    return items;
  }

  function renderSidebar() {
    const snap = S.snap;
    $("workspace-name").textContent = snap.team.domain;
    const switcher = $("user-switch");
    const people = snap.users.filter((u) => !u.is_bot);
    const wanted = people.map((u) => `${u.id}:${u.real_name}`).join("|");
    if (switcher.dataset.sig !== wanted) {
      switcher.replaceChildren(...people.map((u) => optionNode({ text: { text: `${u.real_name} (@${u.name})${u.is_admin ? " · admin" : ""}` }, value: u.id })));
      switcher.dataset.sig = wanted;
    }
    switcher.value = S.user;
    const list = $("channel-list");
    list.replaceChildren(...snap.channels.filter((c) => !c.im).map((c) => {
      const item = el("li");
      const button = el("button", `nav-item${S.view === "channel" && S.channel === c.id ? " active" : ""}`);
      button.type = "button";
      button.dataset.channel = c.id;
      button.append(el("span", "nav-icon", c.private ? "🔒" : "#"), document.createTextNode(c.name));
      button.addEventListener("click", () => selectChannel(c.id));
      item.append(button);
      return item;
    }));
    $("open-home").classList.toggle("active", S.view === "home");
  }

  function selectChannel(id) {
    S.view = "channel";
    S.channel = id;
    S.thread = null;
    saveUrl();
    render();
    $("composer-input").focus();
  }

  // What the stand-in refused (as Slack would) or warned about: for whoever develops the bot.
  function renderProblems() {
    const { problems, warnings } = S.snap;
    const box = $("problems");
    box.hidden = problems.length + warnings.length === 0;
    if (box.hidden) return;
    const parts = [];
    if (problems.length) parts.push(`refused ${problems.length} call${problems.length === 1 ? "" : "s"} from the bot`);
    if (warnings.length) parts.push(`has ${warnings.length} warning${warnings.length === 1 ? "" : "s"}`);
    $("problems-summary").textContent = `⚠️ This stand-in ${parts.join(" and ")}, as Slack would`;
    $("problems-list").replaceChildren(
      ...problems.map((p) => el("li", "", `${p.method}: ${p.error}${p.errors.length ? ` — ${p.errors.join("; ")}` : ""}`)),
      ...warnings.map((w) => el("li", "", `warning: ${w}`)),
    );
  }

  function renderChannel() {
    const snap = S.snap;
    const channel = snap.channels.find((c) => c.id === S.channel) || snap.channels.find((c) => !c.im);
    if (!channel) return;
    S.channel = channel.id;
    $("title").textContent = `${channel.private ? "🔒 " : "#"}${channel.name}`;
    $("subtitle").textContent = channel.bot_member ? "pipeline-bot is in this channel" : "pipeline-bot is not in this channel";
    $("composer-input").placeholder = `Message #${channel.name} — try /pipeline help`;
    const container = $("messages");
    const stick = nearBottom(container);
    const items = channelItems(channel.id, null);
    const intro = {
      key: "intro", sig: "intro", build: () => {
        const box = el("div", "intro");
        box.innerHTML = "<strong>This is a local stand-in for Slack.</strong> Type a slash command below: " +
          "<code>/pipeline list</code> shows the pipelines, <code>/pipeline run &lt;name&gt;</code> posts a card " +
          "that follows the run to its end. A failure is announced in its pipeline's alert channel with its " +
          "owners mentioned, with Retry; details go in the card's thread.";
        return box;
      },
    };
    sync(container, [intro, ...items]);
    if (stick) container.scrollTop = container.scrollHeight;
  }

  function renderThread() {
    const pane = $("thread");
    if (!S.thread || S.view !== "channel") {
      pane.hidden = true;
      return;
    }
    const parent = (S.snap.messages[S.channel] || []).find((m) => m.ts === S.thread);
    if (!parent) {
      S.thread = null;
      pane.hidden = true;
      return;
    }
    pane.hidden = false;
    $("thread-channel").textContent = `#${channelName(S.channel)}`;
    const container = $("thread-messages");
    const stick = nearBottom(container);
    const items = channelItems(S.channel, S.thread);
    const count = items.filter((i) => i.key !== `m:${S.thread}`).length;
    const divider = { key: `divider:${count}`, sig: String(count), build: () => el("div", "thread-divider", `${count} ${count === 1 ? "reply" : "replies"}`) };
    const [first, ...rest] = items;
    sync(container, first ? [first, divider, ...rest] : rest);
    if (stick) container.scrollTop = container.scrollHeight;
  }

  function renderHome() {
    const home = S.snap.home;
    const dm = dmChannel();
    $("title").textContent = "pipeline-bot";
    $("subtitle").textContent = "App";
    $("tabs").hidden = false;
    $("tab-messages").hidden = !dm;
    document.querySelectorAll(".tab").forEach((t) => t.classList.toggle("active", t.dataset.tab === S.homeTab));
    const showHome = S.homeTab === "home" || !dm;
    $("home").hidden = !showHome;
    $("messages").hidden = showHome;
    $("composer").hidden = showHome;
    document.querySelector(".composer-hint").hidden = showHome;
    if (!showHome) {
      const container = $("messages");
      sync(container, channelItems(dm, null));
      return;
    }
    const container = $("home");
    const sig = home ? `${home.id}:${home.hash}` : "";
    if (container.dataset.sig === sig) return;
    container.dataset.sig = sig;
    if (!home) {
      container.replaceChildren(el("p", "placeholder", "Opening the Home tab…"));
      return;
    }
    container.replaceChildren(blocks({ where: "view", viewId: home.id, values: home.values }, home.blocks, ""));
  }

  function modalSig(view) {
    return `${view.id}:${view.hash}:${JSON.stringify(S.errors[view.id] || {})}:${S.modalProblem[view.id] || ""}`;
  }

  function renderModal() {
    const root = $("modal-root");
    const modals = S.snap.modals;
    const view = modals[modals.length - 1];
    if (!view) {
      if (S.renderedModal) root.replaceChildren();
      S.renderedModal = "";
      root.dataset.viewId = "";
      return;
    }
    if (S.errorsHash[view.id] && S.errorsHash[view.id] !== view.hash) {
      S.errors[view.id] = {}; // the app redrew the modal: errors were about the previous version
      delete S.errorsHash[view.id];
    }
    const sig = modalSig(view);
    if (sig === S.renderedModal) return;
    const focused = document.activeElement ? document.activeElement.id : "";
    S.renderedModal = sig;
    const overlay = el("div", "overlay");
    const head = el("div", "modal-head");
    head.append(el("h2", "", plain(view.title)));
    const x = el("button", "icon-button", "✕");
    x.type = "button";
    x.setAttribute("aria-label", "Close all");
    x.addEventListener("click", () => closeModal(view, true));
    head.append(x);
    const body = el("div", "modal-body");
    body.append(blocks({ where: "view", viewId: view.id, values: view.values }, view.blocks, ""));
    const foot = el("div", "modal-foot");
    if (S.modalProblem[view.id]) foot.append(el("span", "modal-problem", S.modalProblem[view.id]));
    const close = el("button", "bk-btn modal-close", plain(view.close) || "Cancel");
    close.type = "button";
    close.addEventListener("click", () => closeModal(view, false));
    foot.append(close);
    if (view.submit) {
      const submit = el("button", "bk-btn primary modal-submit", plain(view.submit));
      submit.type = "submit";
      foot.append(submit);
    }
    const form = el("form");
    form.className = "modal";
    form.setAttribute("role", "dialog");
    form.setAttribute("aria-modal", "true");
    form.setAttribute("aria-label", plain(view.title));
    form.dataset.viewId = view.id;
    form.append(head, body, foot);
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      if (view.submit) submitModal(view);
    });
    overlay.append(form);
    const fresh = root.dataset.viewId !== view.id;
    root.dataset.viewId = view.id;
    root.replaceChildren(overlay);
    const again = focused && document.getElementById(focused);
    if (again) {
      again.focus();
    } else if (fresh) {
      const first = body.querySelector("input, select, textarea, button");
      if (first) first.focus(); // as Slack does, the first field of a new modal has the focus
    }
  }

  function render() {
    if (!S.snap) return;
    renderSidebar();
    renderProblems();
    if (S.view === "home") {
      renderHome();
    } else {
      $("tabs").hidden = true;
      $("home").hidden = true;
      $("messages").hidden = false;
      $("composer").hidden = false;
      document.querySelector(".composer-hint").hidden = false;
      renderChannel();
    }
    renderThread();
    renderModal();
  }

  // -- wiring ------------------------------------------------------------------------------------------------

  function start() {
    $("composer").addEventListener("submit", (event) => {
      event.preventDefault();
      const input = $("composer-input");
      const text = input.value.trim();
      if (!text) return;
      S.history.push(text);
      S.historyAt = S.history.length;
      input.value = "";
      runCommand(text);
    });
    $("composer-input").addEventListener("keydown", (event) => {
      if (event.key !== "ArrowUp" && event.key !== "ArrowDown") return;
      if (!S.history.length) return;
      S.historyAt = Math.max(0, Math.min(S.history.length, S.historyAt + (event.key === "ArrowUp" ? -1 : 1)));
      event.target.value = S.history[S.historyAt] || "";
      event.preventDefault();
    });
    $("user-switch").addEventListener("change", (event) => {
      S.user = event.target.value;
      S.thread = null;
      S.renderedModal = "";
      S.snap = null; // nothing of the previous person's view stays on screen
      S.notes = [];
      S.dismissed.clear();
      for (const id of ["messages", "thread-messages", "modal-root"]) {
        $(id).replaceChildren();
        $(id)._cache = null;
      }
      $("home").dataset.sig = "";
      $("home").replaceChildren(el("p", "placeholder", "Opening the Home tab…"));
      saveUrl();
      connect();
      if (S.view === "home") openHome();
    });
    $("open-home").addEventListener("click", () => openHome());
    document.querySelectorAll(".tab").forEach((tab) => tab.addEventListener("click", () => {
      S.homeTab = tab.dataset.tab;
      if (S.homeTab === "home") openHome();
      else render();
    }));
    $("thread-close").addEventListener("click", () => {
      S.thread = null;
      render();
    });
    document.addEventListener("keydown", (event) => {
      // Escape closes the top modal, wherever the focus is (a confirm dialog, when open, takes it first)
      if (event.key !== "Escape" || !S.snap || !S.snap.modals.length) return;
      event.preventDefault();
      closeModal(S.snap.modals[S.snap.modals.length - 1], false);
    });
    document.addEventListener("click", (event) => {
      const ref = event.target.closest && event.target.closest(".channel-ref");
      if (ref && S.snap.channels.some((c) => c.id === ref.dataset.channel)) selectChannel(ref.dataset.channel);
    });
    connect();
    if (S.view === "home") openHome();
    $("composer-input").focus();
  }

  window.slackPage = { mrkdwn, state: () => S };
  start();
})();
