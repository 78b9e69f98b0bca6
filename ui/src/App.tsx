// The app: signed out, the login screen; signed in, the query cache, the one
// live stream and the pages, each at its own URL (loaded when first
// visited, so the fleet page's code is all the first load needs).

import { lazy, Suspense, useState, type ReactNode } from "react";
import { QueryClient, QueryClientProvider } from "@tanstack/react-query";
import { createBrowserRouter, Link, Navigate, RouterProvider, useParams } from "react-router-dom";
import { ApiProblem } from "./api/client";
import { allowed, useMe } from "./api/hooks";
import { session, useToken } from "./api/session";
import { StreamProvider } from "./api/streamContext";
import { FleetPage } from "./bots/FleetPage";
import { Layout, titled } from "./components/Layout";
import { Empty, ErrorText, Loading } from "./components/States";
import { LoginPage } from "./login/LoginPage";

const BotPage = lazy(() => import("./bots/BotPage").then((m) => ({ default: m.BotPage })));
const ConfigPage = lazy(() => import("./config/ConfigPage").then((m) => ({ default: m.ConfigPage })));
const NewBotPage = lazy(() => import("./newbot/NewBotPage").then((m) => ({ default: m.NewBotPage })));
const StrategiesPage = lazy(() => import("./strategies/StrategiesPage").then((m) => ({ default: m.StrategiesPage })));
const AdminPage = lazy(() => import("./admin/AdminPage").then((m) => ({ default: m.AdminPage })));
const DataPage = lazy(() => import("./research/DataPage").then((m) => ({ default: m.DataPage })));
const BacktestsPage = lazy(() => import("./research/BacktestsPage").then((m) => ({ default: m.BacktestsPage })));
const OptimizationsPage = lazy(() => import("./research/OptimizationsPage").then((m) => ({ default: m.OptimizationsPage })));
const JobPage = lazy(() => import("./research/JobPage").then((m) => ({ default: m.JobPage })));
const ComparePage = lazy(() => import("./research/ComparePage").then((m) => ({ default: m.ComparePage })));

function newQueryClient(): QueryClient {
  return new QueryClient({
    defaultOptions: {
      queries: {
        // The stream keeps data current; a refused request is not retried.
        refetchOnWindowFocus: false,
        retry: (failures, error) =>
          !(error instanceof ApiProblem && error.status >= 400 && error.status < 500) && failures < 2,
      },
      mutations: { retry: false },
    },
  });
}

function Page({ children }: { children: ReactNode }) {
  return <Suspense fallback={<Loading what="the page" />}>{children}</Suspense>;
}

/** A page only some roles may see: the others are told, not surprised by a 403. */
function Gate({ operation, children }: { operation: string; children: ReactNode }) {
  const me = useMe();
  if (me.isLoading) return <Loading what="your role" />;
  if (!allowed(me.data, operation)) {
    return <Empty>This page needs a token with a higher role than {me.data?.role ?? "yours"}.</Empty>;
  }
  return <>{children}</>;
}

function Admin() {
  const me = useMe();
  if (!me.data) return <ErrorText error={me.error} />;
  return <AdminPage me={me.data} />;
}

function BotRoute({ config = false }: { config?: boolean }) {
  const { id = "" } = useParams();
  // A new page per bot: nothing of one bot's view leaks into another's.
  return <Page key={id}>{config ? <ConfigPage /> : <BotPage />}</Page>;
}

function JobRoute({ kind }: { kind: "backtests" | "optimizations" }) {
  const { id = "" } = useParams();
  return (
    <Page key={id}>
      <JobPage kind={kind} />
    </Page>
  );
}

const router = createBrowserRouter([
  {
    path: "/",
    element: <Layout />,
    children: [
      { index: true, element: <FleetPage />, handle: titled(() => "Fleet") },
      // Sign-in shows wherever a caller lands without a token; once signed
      // in, a bookmarked /login goes to the fleet.
      { path: "login", element: <Navigate to="/" replace /> },
      { path: "bots/:id", element: <BotRoute />, handle: titled((p) => p.id) },
      { path: "bots/:id/config", element: <BotRoute config />, handle: titled((p) => `${p.id} config`) },
      {
        path: "new",
        handle: titled(() => "New bot"),
        element: (
          <Gate operation="POST /api/v1/bots">
            <Page>
              <NewBotPage />
            </Page>
          </Gate>
        ),
      },
      {
        path: "strategies",
        handle: titled(() => "Strategies"),
        element: (
          <Page>
            <StrategiesPage />
          </Page>
        ),
      },
      { path: "data", element: <Page><DataPage /></Page>, handle: titled(() => "Data") },
      { path: "backtests", element: <Page><BacktestsPage /></Page>, handle: titled(() => "Backtests") },
      { path: "backtests/compare/:a/:b", element: <Page><ComparePage /></Page>, handle: titled(() => "Compare") },
      { path: "backtests/:id", element: <JobRoute kind="backtests" />, handle: titled((p) => p.id) },
      { path: "optimizations", element: <Page><OptimizationsPage /></Page>, handle: titled(() => "Optimisations") },
      { path: "optimizations/:id", element: <JobRoute kind="optimizations" />, handle: titled((p) => p.id) },
      {
        path: "admin",
        handle: titled(() => "Admin"),
        element: (
          <Gate operation="GET /api/v1/tokens">
            <Page>
              <Admin />
            </Page>
          </Gate>
        ),
      },
      {
        path: "*",
        element: (
          <Empty>
            No such page. <Link to="/">Back to the fleet</Link>
          </Empty>
        ),
      },
    ],
  },
]);

export function App() {
  const token = useToken();
  if (!token) return <LoginPage reason={session.reason() ?? undefined} />;
  // A new cache and stream per sign-in: nothing of one token's view survives it.
  return <SignedIn key={token} />;
}

function SignedIn() {
  const [client] = useState(newQueryClient);
  return (
    <QueryClientProvider client={client}>
      <StreamProvider>
        <RouterProvider router={router} />
      </StreamProvider>
    </QueryClientProvider>
  );
}
