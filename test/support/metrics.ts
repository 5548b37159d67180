// Scraping a running provisio's Prometheus endpoint (README "Metrics").
import { request } from "node:http";
import type { ProvisioProcess } from "./provisio-process.js";

/** The scrape: `name{labels} value` lines, by the whole series text. */
export function scrape(p: ProvisioProcess): Promise<{ status: number; type: string; series: Map<string, number> }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: "127.0.0.1", port: p.info.ports.metrics, path: "/metrics" }, (res) => {
      let text = "";
      res.setEncoding("utf8");
      res.on("data", (c: string) => {
        text += c;
      });
      res.on("end", () => {
        const series = new Map<string, number>();
        for (const line of text.split("\n")) {
          // Label values may hold spaces (a fault rule): the value is what follows the last one.
          const m = /^(.+) (\S+)$/.exec(line);
          if (m?.[1] && m[2] && !line.startsWith("#")) series.set(m[1], Number(m[2]));
        }
        resolve({ status: res.statusCode ?? 0, type: String(res.headers["content-type"]), series });
      });
    });
    req.on("error", reject);
    req.end();
  });
}
