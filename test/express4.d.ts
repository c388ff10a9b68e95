// Express 4, installed as `express4` (npm:express@4) to run the Express tests on both majors.
// It has no types of its own here; the tests use it through Express 5's types.
declare module 'express4' {
  const express: unknown;
  export default express;
}
