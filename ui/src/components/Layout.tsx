// The frame of every page: navigation (only what the role may use), the
// stream's state, theme, toast settings, the emergency stop, and the page.

import { useEffect, useState } from "react";
import { NavLink, Outlet, useMatches, type Params } from "react-router-dom";
import { allowed, useMe } from "../api/hooks";
import { session } from "../api/session";
import { useStreamHealth } from "../api/streamContext";
import { useTheme } from "../lib/theme";
import { setToastKind, useToastKinds, type ToastKind } from "../lib/prefs";
import { CommandPalette } from "./CommandPalette";
import { EmergencyButton } from "../bots/Emergency";
import { Toasts } from "./Toasts";

function StreamDot() {
  const health = useStreamHealth();
  return (
    <span
      className={`stream-dot ${health.connected ? "on" : "off"}`}
      title={health.connected ? `live, event ${health.lastSeq}` : "reconnecting"}
      aria-label={health.connected ? "live" : "reconnecting"}
    />
  );
}

function Settings() {
  const [open, setOpen] = useState(false);
  const kinds = useToastKinds();
  const [theme, toggle] = useTheme();
  const labels: Record<ToastKind, string> = { fills: "Fills", risk: "Risk events", state: "State changes" };
  return (
    <div className="settings">
      <button aria-expanded={open} onClick={() => setOpen(!open)}>
        Settings
      </button>
      {open && (
        <div className="menu">
          <button onClick={toggle}>{theme === "dark" ? "Light theme" : "Dark theme"}</button>
          <fieldset>
            <legend>Toasts</legend>
            {(Object.keys(labels) as ToastKind[]).map((kind) => (
              <label key={kind}>
                <input type="checkbox" checked={kinds[kind]} onChange={(e) => setToastKind(kind, e.target.checked)} />
                {labels[kind]}
              </label>
            ))}
          </fieldset>
          <button onClick={() => session.signOut()}>Sign out</button>
        </div>
      )}
    </div>
  );
}

/** A route's handle: what the browser's tab calls its page. */
interface Titled {
  title: (params: Params) => string | undefined;
}

export const titled = (title: Titled["title"]): Titled => ({ title });

/** The tab says which page it shows: the deepest route's title. */
function usePageTitle() {
  const matches = useMatches();
  const match = [...matches].reverse().find((m) => (m.handle as Titled | undefined)?.title);
  const title = match ? (match.handle as Titled).title(match.params) : undefined;
  useEffect(() => {
    document.title = title ? `${title} · stratbox` : "stratbox";
    // Signed out, the sign-in page shows no route's title.
    return () => {
      document.title = "stratbox";
    };
  }, [title]);
}

export function Layout() {
  const me = useMe();
  usePageTitle();
  return (
    <div className="app">
      <header className="topbar">
        <NavLink to="/" className="brand">
          stratbox
        </NavLink>
        <nav aria-label="Main">
          <NavLink to="/" end>
            Fleet
          </NavLink>
          {allowed(me.data, "POST /api/v1/bots") && <NavLink to="/new">New bot</NavLink>}
          <NavLink to="/strategies">Strategies</NavLink>
          <NavLink to="/data">Data</NavLink>
          <NavLink to="/backtests">Backtests</NavLink>
          <NavLink to="/optimizations">Optimisations</NavLink>
          {allowed(me.data, "GET /api/v1/tokens") && <NavLink to="/admin">Admin</NavLink>}
        </nav>
        <div className="topbar-end">
          <StreamDot />
          <span className="whoami" title={me.data?.token_id}>
            {me.data ? `${me.data.name} · ${me.data.role}` : ""}
          </span>
          {allowed(me.data, "POST /api/v1/emergency/stop-all") && <EmergencyButton />}
          <Settings />
        </div>
      </header>
      <main>
        <Outlet />
      </main>
      <Toasts />
      <CommandPalette />
    </div>
  );
}
