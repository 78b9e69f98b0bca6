// Text with `code` spans, as the server's messages and the schemas'
// descriptions write them.

import { Fragment } from "react";

/** `text` with each `quoted` part in a code span; text whose backticks do
 * not pair is shown as it is. */
export function Inline({ text }: { text: string }) {
  const parts = text.split("`");
  if (parts.length < 3 || parts.length % 2 === 0) return <>{text}</>;
  return (
    <>
      {parts.map((part, index) =>
        index % 2 === 1 ? <code key={index}>{part}</code> : <Fragment key={index}>{part}</Fragment>,
      )}
    </>
  );
}
