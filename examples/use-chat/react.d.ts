// React 19 ships no types of its own and @types/react is not a dev dependency: the little of
// React and react-dom the useChat page uses, so tsc still checks the page. With @types/react
// installed, delete this file.
declare module 'react' {
  export interface ReactElement {
    readonly type: unknown;
    readonly props: unknown;
    readonly key: string | null;
  }
  export type ReactNode = ReactElement | string | number | boolean | null | undefined | Iterable<ReactNode>;
  export type CSSProperties = Record<string, string | number>;
  export type FunctionComponent<P> = (props: P) => ReactNode;
  export function createElement<P extends object>(type: FunctionComponent<P>, props: P & { key?: string }, ...children: ReactNode[]): ReactElement;
  export function createElement(type: string, props?: Record<string, unknown> | null, ...children: ReactNode[]): ReactElement;
  export function useState<S>(initial: S | (() => S)): [S, (next: S | ((previous: S) => S)) => void];
  export function useEffect(effect: () => void | (() => void), deps?: readonly unknown[]): void;
  export const StrictMode: FunctionComponent<{ children?: ReactNode }>;
}

declare module 'react-dom/client' {
  import type { ReactNode } from 'react';
  export interface Root {
    render(children: ReactNode): void;
    unmount(): void;
  }
  export function createRoot(container: Element): Root;
}
