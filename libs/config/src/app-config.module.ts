import { type DynamicModule, Module } from '@nestjs/common';
import { ConfigModule, registerAs } from '@nestjs/config';
import type { ApiAppConfig, ConsumerAppConfig } from './app.config';

/**
 * Hands Nest the configuration an app read and validated before it started, as global
 * namespaces (`rabbitmq`, `api` or `consumer`, `runtime`): inject one with
 * `@Inject(apiConfig.KEY) config: ConfigType<typeof apiConfig>`. Nothing here reads the
 * environment again, nor lets `ConfigService` fall back to it.
 */
@Module({})
export class AppConfigModule {
  static forRoot(config: ApiAppConfig | ConsumerAppConfig): Promise<DynamicModule> {
    return ConfigModule.forRoot({
      isGlobal: true,
      ignoreEnvFile: true,
      validatePredefined: false,
      skipProcessEnv: true,
      load: Object.entries(config).map(([namespace, values]: [string, Record<string, unknown>]) =>
        registerAs(namespace, () => values),
      ),
    });
  }
}
