// Ctrl-K (or Cmd-K): go to any bot or page, or start, stop or pause a bot,
// from the keyboard. Offers only what the caller's role allows; nothing
// that cannot be taken back (a kill asks first, on the bot's page).

import { useEffect, useMemo, useRef, useState } from "react";
import { useNavigate } from "react-router-dom";
import { allowed, useBots, useCommand, useEmergency, useMe, type Command } from "../api/hooks";
import { heldByEmergency } from "../bots/commands";

interface Entry {
  label: string;
  run: () => void;
}

export function CommandPalette() {
  const [open, setOpen] = useState(false);
  useEffect(() => {
    const onKey = (event: KeyboardEvent) => {
      if ((event.ctrlKey || event.metaKey) && event.key.toLowerCase() === "k") {
        event.preventDefault();
        setOpen((shown) => !shown);
      }
    };
    window.addEventListener("keydown", onKey);
    return () => window.removeEventListener("keydown", onKey);
  }, []);
  // Closed, it costs nothing: the entries are built only while it is open.
  return open ? <Palette close={() => setOpen(false)} /> : null;
}

function Palette({ close }: { close: () => void }) {
  const [text, setText] = useState("");
  const [active, setActive] = useState(0);
  const input = useRef<HTMLInputElement>(null);
  const navigate = useNavigate();
  const bots = useBots();
  const me = useMe();
  const command = useCommand();
  const emergency = useEmergency();
  useEffect(() => input.current?.focus(), []);

  const entries = useMemo<Entry[]>(() => {
    const go = (label: string, path: string): Entry => ({ label, run: () => navigate(path) });
    const list: Entry[] = [go("Go to fleet", "/"), go("Go to strategies", "/strategies")];
    if (allowed(me.data, "POST /api/v1/bots")) list.push(go("New bot", "/new"));
    if (allowed(me.data, "GET /api/v1/tokens")) list.push(go("Go to admin", "/admin"));
    for (const bot of bots.data ?? []) {
      list.push(go(`Go to ${bot.id}`, `/bots/${bot.id}`));
      for (const name of ["start", "stop", "pause"] as Command[]) {
        if (
          bot.allowed_commands.includes(name) &&
          allowed(me.data, `POST /api/v1/bots/{id}/${name}`) &&
          !heldByEmergency(name, emergency.data?.engaged)
        ) {
          list.push({ label: `${name[0].toUpperCase()}${name.slice(1)} ${bot.id}`, run: () => command.mutate({ id: bot.id, command: name }) });
        }
      }
    }
    const wanted = text.trim().toLowerCase();
    return list.filter((entry) => entry.label.toLowerCase().includes(wanted)).slice(0, 50);
  }, [bots.data, me.data, emergency.data, text, navigate, command]);

  const choose = (entry: Entry | undefined) => {
    if (!entry) return;
    entry.run();
    close();
  };
  return (
    <div className="overlay" onClick={close}>
      <div className="palette" role="dialog" aria-label="Command palette" onClick={(e) => e.stopPropagation()}>
        <input
          ref={input}
          value={text}
          placeholder="Go to a bot, start, stop, pause…"
          aria-label="Command"
          onChange={(event) => {
            setText(event.target.value);
            setActive(0);
          }}
          onKeyDown={(event) => {
            if (event.key === "Escape") close();
            if (event.key === "ArrowDown") setActive((i) => Math.min(i + 1, entries.length - 1));
            if (event.key === "ArrowUp") setActive((i) => Math.max(i - 1, 0));
            if (event.key === "Enter") choose(entries[active]);
          }}
        />
        <ul role="listbox">
          {entries.map((entry, index) => (
            <li
              key={entry.label}
              role="option"
              aria-selected={index === active}
              className={index === active ? "active" : ""}
              onMouseEnter={() => setActive(index)}
              onClick={() => choose(entry)}
            >
              {entry.label}
            </li>
          ))}
        </ul>
      </div>
    </div>
  );
}
