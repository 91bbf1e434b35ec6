import { type ConfigObject, registerAs } from '@nestjs/config';

/** Raised when a namespace is asked of Nest without `AppConfigModule.forRoot` having handed it its values. */
export class ConfigNotLoadedError extends Error {
  constructor(readonly namespace: string) {
    super(
      `the "${namespace}" configuration was not loaded: read it before Nest starts ` +
        `(readApiAppConfig, readConsumerAppConfig) and import AppConfigModule.forRoot(config)`,
    );
    this.name = ConfigNotLoadedError.name;
  }
}

/**
 * A configuration namespace as Nest knows it: its token and its type, for
 * `@Inject(apiConfig.KEY) config: ConfigType<typeof apiConfig>`. It reads nothing itself: the
 * values are read from the environment once, before Nest starts, and `AppConfigModule.forRoot`
 * provides them under this token.
 */
export function configNamespace<T extends ConfigObject>(name: string) {
  return registerAs(name, (): T => {
    throw new ConfigNotLoadedError(name);
  });
}
