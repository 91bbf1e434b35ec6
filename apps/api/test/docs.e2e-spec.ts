import { Pipeline } from '@app/testing';

// The in-process tests run with a stand-in for @fastify/static (see libs/testing/stubs); this one
// checks the interactive page and its assets on the built api, as users get it.
describe('GET /docs on the built api', () => {
  let pipeline: Pipeline;
  afterAll(async () => pipeline?.dispose());

  it('serves the interactive page with its assets and the description it loads', async () => {
    pipeline = await Pipeline.create('api-docs');
    const { url } = await pipeline.startApi();

    const page = await fetch(`${url}/docs`);
    expect(page.status).toBe(200);
    const html = await page.text();
    const assets = [...html.matchAll(/(?:src|href)="\.\/docs\/([^"]+)"/g)].map((match) => match[1]);
    expect(assets).toEqual(expect.arrayContaining(['swagger-ui-bundle.js', 'swagger-ui.css', 'swagger-ui-init.js']));
    for (const asset of assets) {
      expect({ asset, status: (await fetch(`${url}/docs/${asset}`)).status }).toEqual({ asset, status: 200 });
    }

    const document = (await (await fetch(`${url}/docs-json`)).json()) as { paths: Record<string, unknown> };
    expect(Object.keys(document.paths)).toEqual(expect.arrayContaining(['/message', '/health']));
  });
});
