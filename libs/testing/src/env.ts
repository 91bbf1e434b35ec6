/**
 * Sets environment variables for an app a test builds in-process (undefined unsets one), and
 * returns the function that puts back what was there before.
 */
export function setEnv(variables: Record<string, string | undefined>): () => void {
  const env = process.env;
  const previous = Object.fromEntries(Object.keys(variables).map((name) => [name, env[name]]));
  const apply = (values: Record<string, string | undefined>): void => {
    for (const [name, value] of Object.entries(values)) {
      if (value === undefined) delete env[name];
      else env[name] = value;
    }
  };
  apply(variables);
  return () => apply(previous);
}
