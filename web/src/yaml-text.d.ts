// web/build.ts bundles .yaml files as text (esbuild's text loader): the example flows ship inside app.js.
declare module "*.yaml" {
  const text: string;
  export default text;
}
