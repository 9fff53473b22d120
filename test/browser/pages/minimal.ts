// The smallest useful browser app: connect over gRPC-Web and list applications.
// The bundling test builds it to prove no Node built-in reaches a browser bundle.
import { connect } from "@flame-ts/web";

const flame = connect(new URLSearchParams(location.search).get("flame") ?? location.origin);
const names = (await flame.listApplications()).map((a) => a.name);
document.body.textContent = names.join(", ");
