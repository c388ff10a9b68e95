/**
 * Line charts of benchmark results as SVG files (vega-lite compiled to vega, rendered headless).
 * The font is fixed and nothing in the file depends on the time or the machine, so a rerun with
 * the same figures writes the same bytes and a changed figure shows as a small diff.
 */
import { writeFileSync } from 'node:fs';
import * as vega from 'vega';
import * as vl from 'vega-lite';

/** One point of one line. */
export interface ChartPoint {
  /** The line it belongs to (the legend's label). */
  series: string;
  x: number;
  y: number;
}

/** A chart of lines over a numeric x axis. */
export interface LineChart {
  title: string;
  xTitle: string;
  yTitle: string;
  points: readonly ChartPoint[];
  /** The legend's order; lines not named here come after, in their order of appearance. */
  seriesOrder?: readonly string[] | undefined;
  /** A d3 number format for the y axis, e.g. `'.1%'`. */
  yFormat?: string | undefined;
  /** The y axis' lower end; by default the scale starts at zero. */
  yMin?: number | undefined;
}

const FONT = 'DejaVu Sans, Arial, sans-serif';

/** Renders `chart` to SVG text. */
export async function renderLineChart(chart: LineChart): Promise<string> {
  const xValues = [...new Set(chart.points.map((point) => point.x))].sort((a, b) => a - b);
  const order = [...new Set([...(chart.seriesOrder ?? []), ...chart.points.map((point) => point.series)])].filter((series) =>
    chart.points.some((point) => point.series === series),
  );
  const spec: vl.TopLevelSpec = {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: chart.title,
    width: 520,
    height: 300,
    background: 'white',
    data: { values: chart.points.map((point) => ({ ...point })) },
    mark: { type: 'line', point: true },
    encoding: {
      x: { field: 'x', type: 'quantitative', title: chart.xTitle, axis: { values: xValues, format: ',d' } },
      y: {
        field: 'y',
        type: 'quantitative',
        title: chart.yTitle,
        ...(chart.yFormat === undefined ? {} : { axis: { format: chart.yFormat } }),
        scale: chart.yMin === undefined ? { zero: true } : { zero: false, domainMin: chart.yMin },
      },
      // Twenty colours: one each, however many lines (the default scheme has ten).
      color: { field: 'series', type: 'nominal', title: null, sort: order, scale: { scheme: 'tableau20' }, legend: { labelLimit: 260 } },
    },
    config: { font: FONT, title: { font: FONT }, axis: { labelFont: FONT, titleFont: FONT }, legend: { labelFont: FONT } },
  };
  const view = new vega.View(vega.parse(vl.compile(spec).spec), { renderer: 'none' });
  const svg = await view.toSVG();
  view.finalize();
  return `${svg}\n`;
}

/** Renders `chart` and writes it to `file`. */
export async function writeLineChart(file: URL, chart: LineChart): Promise<void> {
  writeFileSync(file, await renderLineChart(chart));
}
