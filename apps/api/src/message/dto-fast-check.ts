import { type MetadataStorage, type ValidationArguments, ValidationTypes, getMetadataStorage } from 'class-validator';

type ValidationMetadata = ReturnType<MetadataStorage['getTargetValidationMetadatas']>[number];
type Condition = (object: object, value: unknown) => boolean;

interface Rule {
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

/** A yes/no check of one plain object; `true` promises that class-validator finds no fault in it. */
export type DtoFastCheck = (item: Record<string, unknown>) => boolean;

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
        validate: (value, args) => instance.validate(value, args),
        validateIf: metadata.validateIf,
        constraints: metadata.constraints,
      });
    }
  }
  return property;
}

/**
 * Compiles the class-validator rules of `dto` into one synchronous check of plain objects that
 * builds no instance and no error: it says yes only when
 * `validateSync(plainToInstance(dto, item), { whitelist: true, forbidNonWhitelisted: true })` finds
 * nothing, and also refuses any own key that is not a DTO property. Anything it says no to should go
 * through class-validator for the messages. Returns undefined when the DTO uses a rule it does not
 * mirror (nested, async or `each` rules); the DTO must not use class-transformer decorators.
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

  return (item) => {
    for (const key of Object.keys(item)) if (!allowed.has(key)) return false;
    for (const { name, conditions, rules } of properties) {
      const value = item[name];
      if (!conditions.every((condition) => condition(item, value))) continue;
      for (const rule of rules) {
        if (rule.validateIf !== undefined && !rule.validateIf(item, value)) continue;
        const args = { targetName: dto.name, property: name, object: item, value, constraints: rule.constraints };
        // Strictly true: a validator that answers anything else is left to class-validator to judge.
        if (rule.validate(value, args) !== true) return false;
      }
    }
    return true;
  };
}
