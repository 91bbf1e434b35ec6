import { unreadableBody } from './json-body';

describe('unreadableBody', () => {
  it.each([
    ['no coding, no charset', {}],
    ['JSON without a charset', { 'content-type': 'application/json' }],
    ['charset utf-8', { 'content-type': 'application/json; charset=utf-8' }],
    ['charset UTF8, quoted', { 'content-type': 'application/json;charset="UTF8"' }],
    ['the identity coding', { 'content-encoding': 'Identity' }],
    ['an empty coding', { 'content-encoding': '' }],
  ])('reads a body with %s', (_case, headers) => {
    expect(unreadableBody(headers)).toBeUndefined();
  });

  it.each([
    ['gzip', { 'content-encoding': 'gzip' }, 'Content-Encoding gzip is not supported: send the JSON body uncompressed'],
    ['br', { 'content-encoding': ' br ' }, 'Content-Encoding br is not supported: send the JSON body uncompressed'],
    [
      'UTF-16',
      { 'content-type': 'application/json; charset=utf-16' },
      'charset utf-16 is not supported: a JSON body is UTF-8',
    ],
    [
      'Latin-1',
      { 'content-type': 'application/json; foo=bar; charset=ISO-8859-1' },
      'charset ISO-8859-1 is not supported: a JSON body is UTF-8',
    ],
  ])('refuses %s, naming it', (_case, headers, problem) => {
    expect(unreadableBody(headers)).toBe(problem);
  });
});
