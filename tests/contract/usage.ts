// Compiled with tsc --strict against the types openapi-typescript generates (api.d.ts):
// statuses are literal unions, a Problem is typed, a quantity input is string or QuantityIn.
import type { components, operations } from "./api";

type Schemas = components["schemas"];
const placed: Schemas["OrderStatus"] = "PLACED";
// @ts-expect-error: not an order status
const shipped: Schemas["OrderStatus"] = "SHIPPED";
const refusal: Schemas["Problem"] = {
  type: "/problems/invalid_input",
  title: "Invalid input",
  status: 422,
  detail: "dose: 3 kg is not a dose",
  field: "dose",
};
const transit: Schemas["DispatchIn"]["transit"] = { value: "18", unit: "h" };
type Created = operations["createOrder"]["responses"][201]["content"]["application/json"];
const state: NonNullable<Created["dose_material"]>["state"] = "LABELED";
type Refused = operations["createOrder"]["responses"][422]["content"]["application/problem+json"];
const parsed: Refused = refusal;
export { placed, shipped, transit, state, parsed };
