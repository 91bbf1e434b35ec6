/** The broker URL without its password, fit for a log line. */
export function redactUrl(url: string): string {
  return url.replace(/\/\/([^:@/]+):[^@/]*@/, '//$1:***@');
}

/** Several broker URLs (a cluster's nodes), each without its password, comma-separated. */
export function redactUrls(urls: readonly string[]): string {
  return urls.map(redactUrl).join(', ');
}
