import { type MetadataStorage, type ValidationArguments, ValidationTypes, getMetadataStorage } from 'class-validator';

type ValidationMetadata = ReturnType<MetadataStorage['getTargetValidationMetadatas']>[number];
type Condition = (object: object, value: unknown) => boolean;

interface Rule {
  /** The constraint's name: class-validator keeps one message per name and property. */
  name: string;
  validate(value: unknown, args: ValidationArguments): unknown;
  validateIf?: Condition;
  constraints: unknown[];
}

interface PropertyRules {
  name: string;
  /** IsOptional and ValidateIf: when one is false, the property's rules do not apply. */
  conditions: Condition[];
  rules: Rule[];
}

/**
 * Checks of plain objects compiled from a DTO's class-validator rules. Neither builds an instance
 * or an error, and neither looks deeper into a value than the rules do, so a deeply nested value
 * costs no more than a flat one.
 */
export interface DtoFastCheck {
  /** The DTO's validated properties: the only keys an object may have. */
  readonly properties: readonly string[];
  /**
   * True only when `validateSync(plainToInstance(dto, item), { whitelist: true,
   * forbidNonWhitelisted: true })` finds nothing and no own key is extra; stops at the first fault.
   */
  accepts(item: Record<string, unknown>): boolean;
  /**
   * How many messages class-validator would give for `item` (one per extra own key, one per
   * failing constraint of a property), for counting the faults of entries whose messages are not
   * written out.
   */
  countFaults(item: Record<string, unknown>): number;
}

function compileProperty(name: string, metadatas: ValidationMetadata[]): PropertyRules | undefined {
  const property: PropertyRules = { name, conditions: [], rules: [] };
  const storage = getMetadataStorage();
  for (const metadata of metadatas) {
    if (metadata.type === ValidationTypes.WHITELIST) continue;
    if (metadata.type === ValidationTypes.CONDITIONAL_VALIDATION) {
      property.conditions.push(metadata.constraints[0] as Condition);
      continue;
    }
    const plain = metadata.type === ValidationTypes.CUSTOM_VALIDATION || metadata.type === ValidationTypes.IS_DEFINED;
    if (!plain || metadata.each) return undefined;
    for (const constraint of storage.getTargetValidatorConstraints(metadata.constraintCls)) {
      if (constraint.async) return undefined;
      const instance = constraint.instance;
      property.rules.push({
        name: constraint.name,
        validate: (value, args) => instance.validate(value, args),
        validateIf: metadata.validateIf,
        constraints: metadata.constraints,
      });
    }
  }
  return property;
}

/**
 * Compiles the class-validator rules of `dto` into synchronous checks of plain objects (see
 * DtoFastCheck). Anything `accepts` says no to should go through class-validator for the
 * messages. Returns undefined when the DTO uses a rule it does not mirror (nested, async or `each`
 * rules); the DTO must not use class-transformer decorators.
 */
export function compileDtoFastCheck(dto: new () => object): DtoFastCheck | undefined {
  const storage = getMetadataStorage();
  const metadatas = storage.getTargetValidationMetadatas(dto, '', false, false);
  if (metadatas.length === 0) return undefined;
  const properties: PropertyRules[] = [];
  for (const [name, group] of Object.entries(storage.groupByPropertyName(metadatas))) {
    const property = compileProperty(name, group);
    if (property === undefined) return undefined;
    properties.push(property);
  }
  const allowed = new Set(properties.map(({ name }) => name));

  /** How many of its constraints `item[name]` breaks, each name once; 1 at the first unless `all`. */
  const broken = (item: Record<string, unknown>, property: PropertyRules, all: boolean): number => {
    const { name, conditions, rules } = property;
    const value = item[name];
    if (!conditions.every((condition) => condition(item, value))) return 0;
    let names: Set<string> | undefined;
    for (const rule of rules) {
      if (rule.validateIf !== undefined && !rule.validateIf(item, value)) continue;
      const args = { targetName: dto.name, property: name, object: item, value, constraints: rule.constraints };
      // Strictly true: a validator that answers anything else is left to class-validator to judge.
      if (rule.validate(value, args) !== true) {
        if (!all) return 1;
        (names ??= new Set()).add(rule.name);
      }
    }
    return names?.size ?? 0;
  };

  return {
    properties: [...allowed],
    accepts: (item) => {
      for (const key of Object.keys(item)) if (!allowed.has(key)) return false;
      for (const property of properties) if (broken(item, property, false) > 0) return false;
      return true;
    },
    countFaults: (item) => {
      let faults = 0;
      for (const key of Object.keys(item)) if (!allowed.has(key)) faults++;
      for (const property of properties) faults += broken(item, property, true);
      return faults;
    },
  };
}
