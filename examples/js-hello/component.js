// A wasi:http component in JavaScript: answers every request with a greeting and the path.
// Built with jco 1.34.0 (componentize-js); see README.md next to this file.
import {
  Fields,
  OutgoingBody,
  OutgoingResponse,
  ResponseOutparam,
} from "wasi:http/types@0.2.12";

export const incomingHandler = {
  handle(request, responseOut) {
    const path = request.pathWithQuery() ?? "/";
    const response = new OutgoingResponse(
      Fields.fromList([["content-type", new TextEncoder().encode("text/plain")]]),
    );
    const body = response.body();
    ResponseOutparam.set(responseOut, { tag: "ok", val: response });
    const stream = body.write();
    stream.blockingWriteAndFlush(new TextEncoder().encode(`Hello from JavaScript at ${path}\n`));
    stream[Symbol.dispose]();
    OutgoingBody.finish(body, undefined);
  },
};
